//! `barge system check`: find what crashed or killed barge processes left behind, and repair
//! it: half-created or half-removed containers, directories and snapshots without a
//! container, containers whose shim died, runtime state and sockets nobody owns.

use std::collections::HashSet;

use barge_shim::state::{self, Status as ShimStatus};

use crate::error::Result;
use crate::lock::ContainerLock;
use crate::Engine;

#[derive(Debug, Clone)]
pub struct Finding {
    pub what: String,
    pub repaired: bool,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine {
    /// Stop a container whose shim is gone (SIGKILL, if it still runs) and record it as
    /// exited (code 255 unless one was recorded) with `why`: runtime state deleted, rootfs
    /// unmounted, network down, socket removed. Nothing can recover its exit code or the
    /// output written after the shim died (its pipes died with the shim).
    pub(crate) fn finish_without_shim(
        &self,
        id: &str,
        st: &mut barge_shim::state::ShimState,
        why: &str,
    ) {
        if let Ok(store) = self.runtime() {
            let _ = barge_runtime::container::delete(&store, id, true);
        }
        crate::container::unmount_rootfs(&self.paths.rootfs(id));
        self.network_down(id);
        st.status = ShimStatus::Exited;
        st.pid = 0;
        st.exit_code = Some(st.exit_code.unwrap_or(255));
        st.finished_at = Some(barge_util::time::now_rfc3339());
        st.error = Some(why.to_string());
        let _ = state::save(&self.paths.shim_state(id), st);
        let _ = std::fs::remove_file(self.paths.socket(id));
    }

    /// Whether a container's network namespace pin (mounted, or only its file: a start
    /// killed between creating the pin file and mounting the namespace on it) or CNI
    /// attachments exist.
    fn network_left_up(&self, id: &str) -> bool {
        // A mounted pin is a file too: whether the file exists answers both.
        std::fs::symlink_metadata(self.paths.netns(id)).is_ok()
            || self.paths.attachments(id).exists()
    }

    pub fn check(&self, repair: bool) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        let mut note = |what: String, fix: &mut dyn FnMut()| {
            if repair {
                fix();
            }
            out.push(Finding {
                what,
                repaired: repair,
            });
        };
        let rows = self.db.all()?;
        let ids: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        for rec in &rows {
            let dir = self.paths.container(&rec.id);
            if !dir.is_dir() {
                note(
                    format!(
                        "container {} ({}): directory missing (half removed)",
                        rec.id, rec.name
                    ),
                    &mut || self.discard(&rec.id),
                );
                continue;
            }
            let lock_path = self.paths.lock(&rec.id);
            let Some(_lock) = ContainerLock::try_acquire(&lock_path) else {
                if lock_path.exists() {
                    continue; // someone works on it right now
                }
                // Nobody can hold a lock file that is gone: a removal (which deletes the
                // directory's files, the lock among them) was killed before it finished.
                note(
                    format!(
                        "container {} ({}): removal did not finish",
                        rec.id, rec.name
                    ),
                    &mut || self.discard(&rec.id),
                );
                continue;
            };
            if !rec.ready {
                note(
                    format!(
                        "container {} ({}): creation did not finish",
                        rec.id, rec.name
                    ),
                    &mut || self.discard(&rec.id),
                );
                continue;
            }
            let path = self.paths.shim_state(&rec.id);
            let Ok(Some(mut st)) = state::load(&path) else {
                // Never ran: a start killed between its network and its shim.
                if self.network_left_up(&rec.id) {
                    note(
                        format!(
                            "container {} ({}): never started, but its network is up",
                            rec.id, rec.name
                        ),
                        &mut || self.network_down(&rec.id),
                    );
                }
                continue;
            };
            if st.status == ShimStatus::Exited {
                // The shim deletes the runtime's record before it records the exit; one still
                // there (its delete failed) makes every later start fail ("already exists").
                if self
                    .runtime_status(&rec.id)
                    .is_some_and(|s| s == "stopped" || s == "created")
                {
                    note(
                        format!(
                            "container {} ({}): exited, but its runtime state is left",
                            rec.id, rec.name
                        ),
                        &mut || {
                            if let Ok(store) = self.runtime() {
                                let _ = barge_runtime::container::delete(&store, &rec.id, true);
                            }
                        },
                    );
                }
                // The shim unmounts the rootfs after recording the exit: killed in between.
                let rootfs = self.paths.rootfs(&rec.id);
                if !st.shim_alive() && crate::container::is_mounted(&rootfs) {
                    note(
                        format!(
                            "container {} ({}): exited, but its rootfs is still mounted",
                            rec.id, rec.name
                        ),
                        &mut || crate::container::unmount_rootfs(&rootfs),
                    );
                }
                // The shim's clean-up (network teardown) did not run: killed, or a reboot.
                if !st.shim_alive() && self.network_left_up(&rec.id) {
                    note(
                        format!(
                            "container {} ({}): exited, but its network is still up",
                            rec.id, rec.name
                        ),
                        &mut || self.network_down(&rec.id),
                    );
                }
                continue;
            }
            if st.shim_alive() {
                continue;
            }
            let alive = self
                .runtime_status(&rec.id)
                .is_some_and(|s| s == "running" || s == "paused");
            let what = if alive {
                format!(
                    "container {} ({}): running without its shim (killed)",
                    rec.id, rec.name
                )
            } else {
                format!(
                    "container {} ({}): shim gone, exit not recorded",
                    rec.id, rec.name
                )
            };
            note(what, &mut || {
                let why = if alive {
                    "shim lost: the container was stopped by `barge system check` (its exit code and the output after the shim died are lost)"
                } else {
                    "shim lost: the container ended while its shim was gone (exit code not recorded)"
                };
                self.finish_without_shim(&rec.id, &mut st, why);
            });
        }
        // Directories without a row.
        if let Ok(rd) = std::fs::read_dir(self.paths.containers()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !is_id(&name) || ids.contains(&name) {
                    continue;
                }
                if ContainerLock::is_held(&self.paths.lock(&name)) {
                    continue;
                }
                note(
                    format!("directory {} belongs to no container", e.path().display()),
                    &mut || self.discard(&name),
                );
            }
        }
        // Container snapshots without a row (a create killed before its row was written
        // can't have one: the row comes first; this catches rows removed by hand).
        let rows_now: HashSet<String> = self.db.all()?.into_iter().map(|r| r.id).collect();
        for s in self.images.snapshots.list()? {
            if s.kind == barge_image::meta::SnapshotKind::Active
                && is_id(&s.key)
                && !rows_now.contains(&s.key)
                && !self.paths.container(&s.key).exists()
            {
                note(
                    format!("snapshot {} belongs to no container", s.key),
                    &mut || {
                        let _ = self.images.snapshots.remove(&s.key);
                    },
                );
            }
        }
        // Runtime state nobody owns.
        if let Ok(store) = self.runtime() {
            for id in store.ids().unwrap_or_default() {
                if is_id(&id) && !rows_now.contains(&id) {
                    note(
                        format!("runtime container {id} belongs to no container"),
                        &mut || {
                            let _ = barge_runtime::container::delete(&store, &id, true);
                        },
                    );
                }
            }
        }
        Ok(out)
    }
}
