//! OOM notifications: memory.oom_control eventfd on v1, memory.events on v2.
//!
//! [`OomWatcher::fd`] becomes readable when something may have happened; [`OomWatcher::take`]
//! then says how many OOM events occurred since the previous call (often 0 on v2, where any
//! change of memory.events wakes the watcher).
//!
//! - v1: an eventfd registered in `cgroup.event_control` as `"<eventfd> <fd of
//!   memory.oom_control>"`; the kernel adds one per OOM, and one more when the cgroup is
//!   removed (told apart by `cgroup.event_control` having gone).
//! - v2: inotify (IN_MODIFY) on `memory.events`; on wakeup the `oom` and `oom_kill` counters
//!   are compared with the last values seen.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{Driver, Placement};
use crate::error::{at, Context, Error, Result};

/// Watches one container's memory cgroup for OOM events.
#[derive(Debug)]
pub struct OomWatcher {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    V1 {
        efd: EventFd,
        /// Kept open for as long as the registration lives.
        _oom_control: File,
        dir: PathBuf,
        /// The cgroup was removed: later eventfd counts are the removal notice, not OOMs.
        gone: bool,
    },
    V2 {
        inotify: Inotify,
        dir: PathBuf,
        last: Counters,
    },
}

/// OOM counters of a v2 memory.events file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    oom: u64,
    oom_kill: u64,
}

impl OomWatcher {
    /// Start watching the container's memory cgroup. `None` when the container has no memory
    /// controller (no v1 memory hierarchy, or no memory.events in its unified directory).
    pub fn new(p: &Placement) -> Result<Option<Self>> {
        match p.dir_for("memory") {
            None => Ok(None),
            Some((Driver::V1, dir)) => Self::v1(dir).map(Some),
            Some((Driver::V2, dir)) => Self::v2(dir),
        }
    }

    fn v1(dir: &Path) -> Result<Self> {
        let oc_path = dir.join("memory.oom_control");
        let oom_control = File::open(&oc_path).ctx(|| at("open", &oc_path))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .ctx(|| format!("create eventfd for {}", oc_path.display()))?;
        let control = dir.join("cgroup.event_control");
        let line = format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd());
        std::fs::write(&control, &line).ctx(|| {
            format!(
                "register OOM eventfd: write {line:?} to {}",
                control.display()
            )
        })?;
        Ok(Self {
            inner: Inner::V1 {
                efd,
                _oom_control: oom_control,
                dir: dir.to_path_buf(),
                gone: false,
            },
        })
    }

    fn v2(dir: &Path) -> Result<Option<Self>> {
        let events = dir.join("memory.events");
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .ctx(|| format!("inotify_init for {}", events.display()))?;
        match inotify.add_watch(&events, AddWatchFlags::IN_MODIFY) {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e).ctx(|| at("watch", &events)),
        }
        // Only events after this point count.
        let last = read_counters(dir)?.unwrap_or_default();
        Ok(Some(Self {
            inner: Inner::V2 {
                inotify,
                dir: dir.to_path_buf(),
                last,
            },
        }))
    }

    /// The descriptor to poll for POLLIN.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::V1 { efd, .. } => efd.as_fd(),
            Inner::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Number of OOM events since the previous call (or since [`OomWatcher::new`]). Does not
    /// block. A removed cgroup reports no further events.
    pub fn take(&mut self) -> Result<u64> {
        match &mut self.inner {
            Inner::V1 { efd, dir, gone, .. } => {
                let mut n: u64 = 0;
                loop {
                    match efd.read() {
                        Ok(v) => n = n.saturating_add(v),
                        Err(Errno::EAGAIN) => break,
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            return Err(e).ctx(|| format!("read OOM eventfd of {}", dir.display()))
                        }
                    }
                }
                if *gone {
                    return Ok(0);
                }
                if n > 0 && !dir.join("cgroup.event_control").exists() {
                    // Removing the cgroup signals the eventfd once. If that signal is already in
                    // `n` the rest are OOMs; if it is still to come, one OOM goes unreported
                    // rather than a removal being reported as an OOM.
                    *gone = true;
                    return Ok(n - 1);
                }
                Ok(n)
            }
            Inner::V2 { inotify, dir, last } => {
                loop {
                    match inotify.read_events() {
                        Ok(_) => continue,
                        Err(Errno::EAGAIN) => break,
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            return Err(e).ctx(|| {
                                format!("read inotify events for {}/memory.events", dir.display())
                            })
                        }
                    }
                }
                let Some(now) = read_counters(dir)? else {
                    return Ok(0);
                };
                let new = now
                    .oom
                    .saturating_sub(last.oom)
                    .max(now.oom_kill.saturating_sub(last.oom_kill));
                *last = now;
                Ok(new)
            }
        }
    }
}

/// `oom` and `oom_kill` of memory.events; `None` if the file is gone (cgroup removed).
fn read_counters(dir: &Path) -> Result<Option<Counters>> {
    let path = dir.join("memory.events");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENODEV) =>
        {
            return Ok(None)
        }
        Err(source) => {
            return Err(Error::Io {
                context: at("read", &path),
                source,
            })
        }
    };
    let mut c = Counters::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        let slot = match k {
            "oom" => &mut c.oom,
            "oom_kill" => &mut c.oom_kill,
            _ => continue,
        };
        *slot = v
            .parse()
            .map_err(|_| Error::Container(format!("{}: bad {k} count {v:?}", path.display())))?;
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Mode;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    fn events(oom: u64, kill: u64) -> String {
        format!("low 0\nhigh 0\nmax 3\noom {oom}\noom_kill {kill}\noom_group_kill 0\n")
    }

    fn readable(w: &OomWatcher, ms: u16) -> bool {
        let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
    }

    #[test]
    fn v2_counts_new_oom_events_from_memory_events() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::fs::write(dir.join("memory.events"), events(2, 1)).unwrap();
        let p = Placement {
            mode: Mode::V2,
            unified: Some(dir.clone()),
            ..Default::default()
        };
        let mut w = OomWatcher::new(&p).unwrap().expect("watcher");
        assert!(!readable(&w, 0), "readable before any change");
        assert_eq!(w.take().unwrap(), 0, "events before new() are not reported");

        // A change that isn't an OOM wakes the watcher but counts nothing.
        std::fs::write(
            dir.join("memory.events"),
            events(2, 1).replace("max 3", "max 4"),
        )
        .unwrap();
        assert!(readable(&w, 1000));
        assert_eq!(w.take().unwrap(), 0);
        assert!(!readable(&w, 0), "take() did not drain the inotify queue");

        // Two OOMs, one kill.
        std::fs::write(dir.join("memory.events"), events(4, 2)).unwrap();
        assert!(readable(&w, 1000));
        assert_eq!(w.take().unwrap(), 2);
        assert_eq!(w.take().unwrap(), 0, "counted twice");

        // Kills without an `oom` increase (e.g. oom_group) still count.
        std::fs::write(dir.join("memory.events"), events(4, 5)).unwrap();
        assert!(readable(&w, 1000));
        assert_eq!(w.take().unwrap(), 3);

        // The cgroup goes away: no error, nothing more.
        std::fs::remove_file(dir.join("memory.events")).unwrap();
        assert_eq!(w.take().unwrap(), 0);
    }

    #[test]
    fn no_memory_controller_means_no_watcher() {
        let t = tempfile::tempdir().unwrap();
        let p = Placement {
            mode: Mode::V2,
            unified: Some(t.path().to_path_buf()),
            ..Default::default()
        };
        assert!(OomWatcher::new(&p).unwrap().is_none(), "no memory.events");
        assert!(OomWatcher::new(&Placement::default()).unwrap().is_none());
    }

    #[test]
    fn v1_without_a_memory_cgroup_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let mut p = Placement::default();
        p.controllers
            .insert("memory".into(), t.path().join("missing"));
        let e = OomWatcher::new(&p).unwrap_err().to_string();
        assert!(e.contains("memory.oom_control"), "{e}");
    }

    #[test]
    fn malformed_counter_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("memory.events"), "oom x\n").unwrap();
        let e = read_counters(t.path()).unwrap_err().to_string();
        assert!(e.contains("memory.events") && e.contains("oom"), "{e}");
    }
}
