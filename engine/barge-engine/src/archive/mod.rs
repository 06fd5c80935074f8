//! `docker cp` both ways: stat a path in a container, tar it out, extract a tar into it.
//! Works on running and stopped containers (a stopped one's rootfs is mounted for the time of
//! the copy, under the container's lock). Paths resolve as inside the container, volumes and
//! bind mounts included ([`view`]); nothing a container planted can make a copy read or
//! write outside it.

mod pack;
pub mod view;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::stat::SFlag;

use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::lock::ContainerLock;
use crate::Engine;
use view::View;

/// docker's `PathStat` (the `X-Docker-Container-Path-Stat` header): `mode` is Go's
/// `os.FileMode` (type bits high, permissions low).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of a stat's `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let kind = SFlag::from_bits_truncate(st_mode) & SFlag::S_IFMT;
    let mut m = st_mode & 0o777;
    m |= match kind {
        SFlag::S_IFDIR => 1 << 31,
        SFlag::S_IFLNK => 1 << 27,
        SFlag::S_IFIFO => 1 << 25,
        SFlag::S_IFSOCK => 1 << 24,
        SFlag::S_IFBLK => 1 << 26,
        SFlag::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// A container's filesystem made visible for one copy: the lock held (no start or removal
/// meanwhile, for a stopped container), the rootfs mounted if it was not.
pub struct Opened {
    pub rec: ContainerRecord,
    pub view: View,
    mounted_here: Option<PathBuf>,
    _lock: Option<ContainerLock>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(p) = self.mounted_here.take() {
            crate::container::unmount_rootfs(&p);
        }
    }
}

/// docker's rule: a path ending in `/` or `/.` names the directory's contents (and follows
/// a final symlink).
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

impl Engine {
    /// Open `key`'s filesystem for a copy.
    pub fn archive_open(&self, key: &str) -> Result<Opened> {
        let rec = self.db.find(key)?;
        let rootfs = self.paths.rootfs(&rec.id);
        let running = self.status(&rec).state.is_active();
        let (lock, mounted_here) = if running {
            (None, None)
        } else {
            let lock = ContainerLock::acquire(&self.paths.lock(&rec.id))?;
            if crate::container::is_mounted(&rootfs) {
                (Some(lock), None)
            } else {
                self.mount_rootfs(&rec.id)?;
                (Some(lock), Some(rootfs.clone()))
            }
        };
        let mounts = rec
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" || m.kind == "bind")
            .map(|m| {
                let src = if m.kind == "volume" {
                    self.volume_path(&m.source)
                } else {
                    PathBuf::from(&m.source)
                };
                (m.destination.clone(), src, m.readonly)
            })
            .collect();
        let view = View::new(rootfs, rec.config.read_only, mounts);
        Ok(Opened {
            rec,
            view,
            mounted_here,
            _lock: lock,
        })
    }

    fn no_such_path(rec: &ContainerRecord, path: &str) -> Error {
        Error::NoSuchPath {
            container: rec.name.clone(),
            path: path.to_string(),
        }
    }

    /// Stat `path` in the container (a final symlink is not followed unless the path ends
    /// in `/`): docker's `HEAD /containers/ID/archive`.
    pub fn archive_stat(&self, o: &Opened, path: &str) -> Result<PathStat> {
        let comps = o.view.resolve(path, follows_last(path))?;
        let st = o
            .view
            .lstat(&comps)?
            .ok_or_else(|| Self::no_such_path(&o.rec, path))?;
        let is_link = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK;
        let link_target = if is_link {
            let target = o.view.resolve(path, true)?;
            let mut s = String::from("/");
            s.push_str(
                &target
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
            s
        } else {
            String::new()
        };
        let name = comps
            .last()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        Ok(PathStat {
            name,
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: barge_runtime::time::format_rfc3339(
                st.st_mtime,
                u32::try_from(st.st_mtime_nsec).unwrap_or(0),
            ),
            link_target,
        })
    }

    /// Tar `path` (a file, a symlink, or a directory with everything below it) to `w`, its
    /// entries named from the path's last component, as docker does.
    pub fn archive_get(&self, o: &Opened, path: &str, w: impl Write) -> Result<()> {
        let comps = o.view.resolve(path, follows_last(path))?;
        if o.view.lstat(&comps)?.is_none() {
            return Err(Self::no_such_path(&o.rec, path));
        }
        let (dir, leaf) = o.view.parent_of(&comps)?;
        let leaf = leaf.unwrap_or_else(|| OsString::from("."));
        let name: PathBuf = comps
            .last()
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        pack::add(&mut b, &dir, &leaf, &name)?;
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::Other(format!("write the archive of {path}: {e}")))?;
        Ok(())
    }

    /// Extract the tar `r` into the directory `path` of the container (docker's `PUT
    /// /containers/ID/archive`). Symlinks on the way to `path` resolve inside the container;
    /// entries are confined to `path` (no `..`, no absolute names, no symlinked parents).
    pub fn archive_put(
        &self,
        o: &Opened,
        path: &str,
        r: impl Read,
        no_overwrite_dir_non_dir: bool,
    ) -> Result<()> {
        let comps = o.view.resolve(path, true)?;
        let st = o
            .view
            .lstat(&comps)?
            .ok_or_else(|| Self::no_such_path(&o.rec, path))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            return Err(Error::BadParameter(format!(
                "extraction point is not a directory: {path}"
            )));
        }
        let place = o.view.place(&comps);
        if place.readonly {
            return Err(Error::Conflict(format!(
                "container {}: {path} is on a read-only file system (read-only rootfs or mount)",
                o.rec.name
            )));
        }
        let dir = View::open_dir(place.base, &place.rel)?;
        let limits = barge_image::unpack::Limits {
            max_entries: u64::MAX,
            max_bytes: u64::MAX,
        };
        barge_image::unpack::unpack_copy(
            r,
            dir,
            &limits,
            barge_image::unpack::CopyOptions {
                no_overwrite_dir_non_dir,
            },
        )
        .map_err(|e| match e {
            barge_image::Error::UnsafeEntry { .. } | barge_image::Error::Invalid { .. } => {
                Error::BadParameter(format!("copy into {path}: {e}"))
            }
            other => Error::Image(other),
        })?;
        Ok(())
    }
}

/// The container path of resolved components (for messages).
pub fn display(comps: &[OsString]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(c.as_bytes()));
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}
