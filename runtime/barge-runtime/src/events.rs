//! `events`: a container's OOM notifications and usage statistics as runc prints them: one JSON
//! object per line, `{"type":"stats","id":..,"data":{..}}` and `{"type":"oom","id":..}`.
//!
//! The stream waits with poll() on the OOM watcher and a pidfd of the container's init, with the
//! time left to the next statistics tick as timeout, and ends when init exits (after reporting
//! the OOMs that came before).

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use serde::Serialize;

use crate::cgroups::oom::OomWatcher;
use crate::cgroups::stats::{self, Stats};
use crate::error::{Context, Error, Result};
use crate::state::Store;
use crate::sys;

/// One event line (runc's `types.Event`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Stats,
    Oom,
}

impl Event {
    pub fn stats(id: &str, data: Stats) -> Self {
        Self {
            kind: EventKind::Stats,
            id: id.to_string(),
            data: Some(data),
        }
    }

    pub fn oom(id: &str) -> Self {
        Self {
            kind: EventKind::Oom,
            id: id.to_string(),
            data: None,
        }
    }

    /// Write the event as one JSON line and flush.
    pub fn write_line(&self, out: &mut dyn Write) -> Result<()> {
        let mut line = serde_json::to_vec(self)
            .map_err(|e| Error::Container(format!("encode event of {}: {e}", self.id)))?;
        line.push(b'\n');
        out.write_all(&line)
            .and_then(|()| out.flush())
            .ctx(|| format!("write event of container {}", self.id))
    }
}

/// The current statistics of container `id`, as the event `events --stats` prints.
pub fn stats_once(store: &Store, id: &str) -> Result<Event> {
    let (st, _) = store.load_live(id, "report events")?;
    let data = stats::read(&st.cgroup)?;
    Ok(Event::stats(id, data))
}

/// Write a stats event every `interval` (the first one after `interval`, as runc does) and an
/// OOM event for every OOM of container `id`, until its init exits.
pub fn stream(store: &Store, id: &str, interval: Duration, out: &mut dyn Write) -> Result<()> {
    if interval.is_zero() {
        return Err(Error::InvalidArgument(
            "events: the interval must be greater than 0".into(),
        ));
    }
    let (st, _) = store.load_live(id, "report events")?;
    let pid = Pid::from_raw(st.pid);
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        // Exited between the status check and now: nothing more to report.
        Err(Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("pidfd_open {pid} (init of container {id})")),
    };
    // The pid may have been reused between the status check and pidfd_open.
    if !barge_util::process::alive_since(st.pid, st.pid_start_time) {
        return Ok(());
    }
    let mut oom = OomWatcher::new(&st.cgroup)?;
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        let left = next.saturating_duration_since(now);
        let ms = left.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let (oom_ready, exited) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &oom {
                fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Err(Errno::EINTR) => continue,
                r => r.ctx(|| format!("wait for events of container {id}"))?,
            };
            let hit = |f: &PollFd| {
                f.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            };
            (fds.get(1).is_some_and(hit), hit(&fds[0]))
        };
        if oom_ready || exited {
            report_ooms(oom.as_mut(), id, out)?;
        }
        if exited {
            return Ok(());
        }
        if Instant::now() >= next {
            match stats::read(&st.cgroup) {
                Ok(s) => Event::stats(id, s).write_line(out)?,
                Err(e) => tracing::warn!("container {id}: statistics: {e}"),
            }
            next += interval;
            let now = Instant::now();
            if next <= now {
                // Fell behind (a slow read, a stopped consumer): don't burst to catch up.
                next = now + interval;
            }
        }
    }
}

fn report_ooms(w: Option<&mut OomWatcher>, id: &str, out: &mut dyn Write) -> Result<()> {
    let Some(w) = w else { return Ok(()) };
    for _ in 0..w.take()? {
        Event::oom(id).write_line(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_have_runcs_shape() {
        let mut out = Vec::new();
        Event::oom("c1").write_line(&mut out).unwrap();
        let s = Stats {
            pids: Some(stats::Pids {
                current: 2,
                limit: 0,
            }),
            ..Default::default()
        };
        Event::stats("c1", s).write_line(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"type\":\"oom\",\"id\":\"c1\"}\n\
             {\"type\":\"stats\",\"id\":\"c1\",\"data\":{\"pids\":{\"current\":2}}}\n"
        );
    }

    #[test]
    fn unknown_container_and_zero_interval_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let e = stats_once(&store, "nope").unwrap_err();
        assert!(matches!(e, Error::NotExist(ref id) if id == "nope"), "{e}");
        let mut out = Vec::new();
        let e = stream(&store, "nope", Duration::from_secs(1), &mut out).unwrap_err();
        assert!(matches!(e, Error::NotExist(_)), "{e}");
        let e = stream(&store, "nope", Duration::ZERO, &mut out).unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
        assert!(out.is_empty());
    }
}
