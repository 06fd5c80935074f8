//! Telling "the memory limit is too small to set the container up" from other setup failures.
//!
//! When the container's processes die or fail during setup (a kernel allocation refused with
//! ENOMEM, the OOM killer's SIGKILL), the memory cgroup says whether the limit was the cause:
//! - v1: `memory.oom_control`'s `oom_kill` counter (Linux ≥ 4.13), and `memory.failcnt`, the
//!   number of charges that hit the limit (a refused kernel allocation shows only there);
//! - v2: `memory.events`' `oom_kill`, `oom` and `max` counters.
//!
//! A fresh container cgroup starts at zero, so any count belongs to this setup.

use std::path::Path;

use super::{Driver, Placement};
use crate::error::Error;

/// What the memory cgroup recorded while the container was being set up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetupOom {
    /// Processes the OOM killer killed.
    pub killed: u64,
    /// Charges refused or reclaimed at the limit (v1 failcnt, v2 `max` + `oom`).
    pub at_limit: u64,
}

impl SetupOom {
    /// Read the counters; `None` without a memory controller or if nothing hit the limit.
    pub fn read(p: &Placement) -> Option<SetupOom> {
        let (driver, dir) = p.dir_for("memory")?;
        let c = match driver {
            Driver::V1 => SetupOom {
                killed: field(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0),
                at_limit: read_u64(&dir.join("memory.failcnt")).unwrap_or(0),
            },
            Driver::V2 => {
                let events = dir.join("memory.events");
                SetupOom {
                    killed: field(&events, "oom_kill").unwrap_or(0),
                    at_limit: field(&events, "max").unwrap_or(0)
                        + field(&events, "oom").unwrap_or(0),
                }
            }
        };
        (c.killed > 0 || c.at_limit > 0).then_some(c)
    }

    /// The error for a setup that failed with `cause` while the cgroup recorded `self`.
    pub fn error(&self, limit: Option<i64>, cause: &Error) -> Error {
        let limit = match limit {
            Some(l) if l > 0 => format!("memory limit {} (linux.resources.memory.limit)", size(l)),
            _ => "the memory limit (linux.resources.memory.limit)".to_string(),
        };
        let what = if self.killed > 0 {
            "container init was killed by the OOM killer during setup"
        } else {
            "container setup ran out of memory"
        };
        Error::Container(format!("{what}: {limit} is too small ({cause})"))
    }
}

/// `1048576` → `1 MiB`, `262144` → `256 KiB`, else bytes.
fn size(bytes: i64) -> String {
    const KIB: i64 = 1024;
    if bytes % (KIB * KIB) == 0 {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key N` in a flat-keyed cgroup file.
fn field(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Placement;

    fn v1(files: &[(&str, &str)]) -> (tempfile::TempDir, Placement) {
        let t = tempfile::tempdir().unwrap();
        for (f, c) in files {
            std::fs::write(t.path().join(f), c).unwrap();
        }
        let mut p = Placement::default();
        p.controllers
            .insert("memory".into(), t.path().to_path_buf());
        (t, p)
    }

    #[test]
    fn v1_counters() {
        let (_t, p) = v1(&[
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
            ("memory.failcnt", "7\n"),
        ]);
        assert_eq!(
            SetupOom::read(&p),
            Some(SetupOom {
                killed: 1,
                at_limit: 7
            })
        );
        let (_t, p) = v1(&[
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.failcnt", "0\n"),
        ]);
        assert_eq!(SetupOom::read(&p), None, "nothing hit the limit");
        assert_eq!(
            SetupOom::read(&Placement::default()),
            None,
            "no memory cgroup"
        );
    }

    #[test]
    fn the_message_names_the_limit_and_the_cause() {
        let cause = Error::Container("container init exited before finishing setup".into());
        let e = SetupOom {
            killed: 1,
            at_limit: 3,
        }
        .error(Some(128 * 1024), &cause)
        .to_string();
        assert!(
            e.contains(
                "container init was killed by the OOM killer during setup: memory limit \
                        128 KiB (linux.resources.memory.limit) is too small"
            ) && e.contains("exited before finishing setup"),
            "{e}"
        );
        let e = SetupOom {
            killed: 0,
            at_limit: 3,
        }
        .error(Some(3 << 20), &cause)
        .to_string();
        assert!(e.contains("ran out of memory: memory limit 3 MiB"), "{e}");
    }
}
