//! Replay the journal, then wait for new events with inotify on its directory (no polling):
//! a follower keeps the current file open and reads on from where it was. When the file is
//! rotated, the follower drains the file it holds (now `journal.1.jsonl`: no writer appends
//! to it any more once it is renamed, see [`crate::journal`]) and moves to the new current file
//! (reading the rotated file first when two rotations happened since it last read). A
//! follower that falls three files behind has lost the oldest: the journal is bounded.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::event::Event;
use crate::journal::{inode, parse_lines, read_rest, Journal};

/// An inotify watch on a journal's directory: its fd turns readable when an event is
/// appended or the journal rotates. A follower has its own; a server with many followers
/// keeps one and wakes its passive followers ([`Follower::open_passive`]) from it (one
/// inotify instance, where the kernel allows 128 per user).
pub struct JournalWatch {
    inotify: Inotify,
}

impl JournalWatch {
    /// Watch `journal` (its directory is made if missing).
    pub fn new(journal: &Journal) -> io::Result<JournalWatch> {
        let dir = journal.dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| nix_io("inotify for", dir, e))?;
        inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM,
            )
            .map_err(|e| nix_io("watch", dir, e))?;
        Ok(JournalWatch { inotify })
    }

    /// Readable when the journal changed since the last [`JournalWatch::clear`] (not
    /// blocking; an async server registers it with its reactor).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Empty the watch's queue: what it reported is read from the files next.
    pub fn clear(&self) {
        while let Ok(evs) = self.inotify.read_events() {
            if evs.is_empty() {
                break;
            }
        }
    }

    /// Block until the fd is readable or `timeout` (`None`: no limit) has passed; an
    /// interrupted wait returns early.
    fn wait(&self, timeout: PollTimeout, dir: &std::path::Path) -> io::Result<()> {
        let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(nix_io("wait for events in", dir, e)),
        }
    }
}

/// Follows one journal.
pub struct Follower {
    journal: Journal,
    /// None for a passive follower: someone else watches the journal and asks it to look.
    watch: Option<JournalWatch>,
    /// The file being read and its inode (none before the journal's first event).
    file: Option<(File, u64)>,
    /// The start of a line not complete yet.
    partial: Vec<u8>,
    pending: VecDeque<Event>,
}

/// `d` as poll's timeout, rounded up to the next millisecond (a wait that ends early only
/// loops).
fn poll_timeout(d: Duration) -> PollTimeout {
    let ms = d.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

fn nix_io(what: &str, path: &std::path::Path, e: nix::Error) -> io::Error {
    io::Error::other(format!("{what} {}: {e}", path.display()))
}

impl Follower {
    /// Follow `journal`. With `replay`, every event it holds comes first (oldest first);
    /// without, only events appended from now on.
    pub fn open(journal: &Journal, replay: bool) -> io::Result<Follower> {
        // Watch first, then open: nothing appended in between is missed.
        let watch = JournalWatch::new(journal)?;
        Follower::open_with(journal, replay, Some(watch))
    }

    /// A follower without a watch of its own: [`Follower::next_timeout`] never waits (it
    /// returns what is there), and the caller looks again when a shared [`JournalWatch`]
    /// (made before this follower) says the journal changed.
    pub fn open_passive(journal: &Journal, replay: bool) -> io::Result<Follower> {
        Follower::open_with(journal, replay, None)
    }

    fn open_with(
        journal: &Journal,
        replay: bool,
        watch: Option<JournalWatch>,
    ) -> io::Result<Follower> {
        let mut f = Follower {
            journal: journal.clone(),
            watch,
            file: None,
            partial: Vec::new(),
            pending: VecDeque::new(),
        };
        f.file = f.open_current()?;
        if replay {
            let held = f.file.as_ref().map(|(_, ino)| *ino);
            let rotated = journal.rotated();
            match File::open(&rotated) {
                Ok(mut r) => {
                    // Rotated since we opened ours: it is the one we hold.
                    if Some(inode(&r)?) != held {
                        let mut data = Vec::new();
                        read_rest(&mut r, &mut data)?;
                        f.pending.extend(parse_lines(&data));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("open {}: {e}", rotated.display()),
                    ))
                }
            }
        } else if let Some((file, _)) = &mut f.file {
            file.seek(SeekFrom::End(0))?;
        }
        Ok(f)
    }

    fn open_current(&self) -> io::Result<Option<(File, u64)>> {
        let path = self.journal.current();
        match File::open(&path) {
            Ok(file) => {
                let ino = inode(&file)?;
                Ok(Some((file, ino)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("open {}: {e}", path.display()),
            )),
        }
    }

    /// Read what the held file has, and move on to a new current file (rotation).
    fn drain(&mut self) -> io::Result<()> {
        loop {
            self.read_held()?;
            let now = std::fs::metadata(self.journal.current())
                .ok()
                .map(|m| m.ino());
            let held = self.file.as_ref().map(|(_, ino)| *ino);
            if now.is_none() || now == held {
                return Ok(());
            }
            // Rotated (or created): all writes to the held file happened before the rename.
            self.read_held()?;
            self.partial.clear();
            let next = self.open_current()?;
            // Rotated twice: the file between the held one and the new current one is the
            // rotated file now (complete: nothing appends to it any more).
            let next_ino = next.as_ref().map(|(_, ino)| *ino);
            if let Ok(mut r) = File::open(self.journal.rotated()) {
                let r_ino = inode(&r)?;
                if Some(r_ino) != held && Some(r_ino) != next_ino {
                    let mut data = Vec::new();
                    read_rest(&mut r, &mut data)?;
                    self.pending.extend(parse_lines(&data));
                }
            }
            self.file = next;
        }
    }

    fn read_held(&mut self) -> io::Result<()> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let start = self.partial.len();
        read_rest(file, &mut self.partial)?;
        if self.partial.len() == start {
            return Ok(());
        }
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.partial.split_off(last_nl + 1);
        self.pending.extend(parse_lines(&self.partial));
        self.partial = rest;
        Ok(())
    }

    /// Block until the journal may have changed or `timeout` has passed (what came is then
    /// taken with a zero timeout). A passive follower sleeps the whole `timeout`.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        match &self.watch {
            Some(w) => w.wait(poll_timeout(timeout), self.journal.dir()),
            None => {
                std::thread::sleep(timeout);
                Ok(())
            }
        }
    }

    /// The next event, waiting up to `timeout` for one (`None`: wait as long as it takes);
    /// `Ok(None)` when none came in time. A passive follower does not wait: `Ok(None)` when
    /// nothing is there.
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> io::Result<Option<Event>> {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(Some(ev));
            }
            // Empty inotify's queue before reading the files (what it reports is read
            // below): a follower asked only for what is there (timeout zero) never polls,
            // and its queue would otherwise fill up in the kernel.
            if let Some(w) = &self.watch {
                w.clear();
            }
            self.drain()?;
            if let Some(ev) = self.pending.pop_front() {
                return Ok(Some(ev));
            }
            let Some(watch) = &self.watch else {
                return Ok(None);
            };
            let wait = match end {
                None => PollTimeout::NONE,
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    poll_timeout(left)
                }
            };
            watch.wait(wait, self.journal.dir())?;
        }
    }
}

impl Iterator for Follower {
    type Item = io::Result<Event>;

    /// Blocks until the next event.
    fn next(&mut self) -> Option<io::Result<Event>> {
        self.next_timeout(None).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Type};

    fn ev(i: usize) -> Event {
        Event::now(Type::Container, Action::Start, format!("c{i}"))
    }

    fn readable(w: &JournalWatch) -> bool {
        let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    /// Passive followers never wait; one shared watch says when to look, across a rotation.
    #[test]
    fn passive_followers_are_woken_by_a_shared_watch() {
        let dir = tempfile::tempdir().unwrap();
        // Every append after the first rotates.
        let j = Journal::new(dir.path().join("ev")).with_max_bytes(1);
        let watch = JournalWatch::new(&j).unwrap();
        let mut a = Follower::open_passive(&j, false).unwrap();
        let mut b = Follower::open_passive(&j, false).unwrap();
        let t = Instant::now();
        assert!(a
            .next_timeout(Some(Duration::from_secs(5)))
            .unwrap()
            .is_none());
        assert!(a.next_timeout(None).unwrap().is_none());
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a passive follower waited"
        );
        assert!(!readable(&watch));
        j.append(&ev(1)).unwrap();
        assert!(readable(&watch));
        watch.clear();
        assert!(!readable(&watch));
        for f in [&mut a, &mut b] {
            assert_eq!(
                f.next_timeout(Some(Duration::ZERO))
                    .unwrap()
                    .unwrap()
                    .actor
                    .id,
                "c1"
            );
            assert!(f.next_timeout(Some(Duration::ZERO)).unwrap().is_none());
        }
        // A rotation wakes the watch too, and the followers move to the new file.
        j.append(&ev(2)).unwrap();
        assert!(j.rotated().exists());
        assert!(readable(&watch));
        assert_eq!(
            a.next_timeout(Some(Duration::ZERO))
                .unwrap()
                .unwrap()
                .actor
                .id,
            "c2"
        );
    }

    #[test]
    fn replays_then_follows_live() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("ev"));
        j.append(&ev(0)).unwrap();
        let mut all = Follower::open(&j, true).unwrap();
        let mut live = Follower::open(&j, false).unwrap();
        assert_eq!(
            all.next_timeout(Some(Duration::ZERO))
                .unwrap()
                .unwrap()
                .actor
                .id,
            "c0"
        );
        assert!(live
            .next_timeout(Some(Duration::from_millis(20)))
            .unwrap()
            .is_none());
        let j2 = j.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            j2.append(&ev(1)).unwrap();
        });
        let t = Instant::now();
        let got = live
            .next_timeout(Some(Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        assert_eq!(got.actor.id, "c1");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(
            all.next_timeout(Some(Duration::from_secs(5)))
                .unwrap()
                .unwrap()
                .actor
                .id,
            "c1"
        );
        writer.join().unwrap();
    }

    #[test]
    fn follower_misses_nothing_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path()).with_max_bytes(16 << 10);
        let mut f = Follower::open(&j, true).unwrap();
        let n = 2000;
        let j2 = j.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                j2.append(&ev(i)).unwrap();
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut seen = Vec::new();
        while seen.len() < n {
            match f.next_timeout(Some(Duration::from_secs(10))).unwrap() {
                Some(e) => seen.push(e.actor.id),
                None => panic!("stalled after {} events", seen.len()),
            }
        }
        writer.join().unwrap();
        let want: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        assert_eq!(seen, want);
        // The journal was rotated many times and stays bounded.
        assert!(std::fs::metadata(j.current()).unwrap().len() < 17 << 10);
        assert!(j.read().unwrap().len() < 400);
    }
}
