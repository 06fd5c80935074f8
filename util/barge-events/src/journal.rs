//! The journal file: `DIR/journal.jsonl`, one event per line (docker's JSON), and the rotated
//! `DIR/journal.1.jsonl`. Bounded: past [`MAX_BYTES`] the current file becomes the rotated
//! one (replacing it), so the journal holds between one and two files' worth of events.
//!
//! Writers (any number of processes) append each event with one `write(2)` on an `O_APPEND`
//! descriptor, which the kernel makes atomic between them: lines never interleave. Each
//! append holds a shared `flock` on `DIR/lock` from opening the file to writing, and rotation
//! takes it exclusively: so two writers never both rotate, and no line is written into a file
//! after it was rotated away (a follower that drained the rotated file misses nothing).
//! Events are not fsynced one by one: a power cut may lose the last ones, never a line's
//! half (a torn last line is skipped by readers).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::event::Event;

/// The size past which the current file is rotated.
pub const MAX_BYTES: u64 = 1 << 20;

/// The journal of one store.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    max_bytes: u64,
}

fn err_at(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl Journal {
    /// The journal in directory `dir` (created on first append).
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            max_bytes: MAX_BYTES,
        }
    }

    /// The journal of the store at `root`: `<root>/events`.
    pub fn in_store(root: &Path) -> Journal {
        Journal::new(root.join("events"))
    }

    /// Rotate past `n` bytes instead of [`MAX_BYTES`] (tests).
    pub fn with_max_bytes(mut self, n: u64) -> Journal {
        self.max_bytes = n.max(1);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file events are appended to.
    pub fn current(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// The previous file (older events).
    pub fn rotated(&self) -> PathBuf {
        self.dir.join("journal.1.jsonl")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    fn open_lock(&self) -> io::Result<File> {
        let path = self.lock_path();
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc_cloexec())
                .open(&path)
        };
        match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| err_at("create", &self.dir, e))?;
                open()
            }
            r => r,
        }
        .map_err(|e| err_at("open", &path, e))
    }

    fn open_current(&self) -> io::Result<File> {
        let path = self.current();
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| err_at("open", &path, e))
    }

    /// Append one event.
    pub fn append(&self, ev: &Event) -> io::Result<()> {
        let line = ev.to_line();
        let lock = self.open_lock()?;
        lock.lock_shared()
            .map_err(|e| err_at("lock", &self.lock_path(), e))?;
        let mut file = self.open_current()?;
        let size = file
            .metadata()
            .map_err(|e| err_at("stat", &self.current(), e))?
            .len();
        if size >= self.max_bytes {
            // Rotate, unless another writer did while we waited for the exclusive lock.
            lock.lock()
                .map_err(|e| err_at("lock", &self.lock_path(), e))?;
            let current = self.current();
            match std::fs::metadata(&current) {
                Ok(m) if m.len() >= self.max_bytes => {
                    std::fs::rename(&current, self.rotated())
                        .map_err(|e| err_at("rotate", &current, e))?;
                }
                _ => {}
            }
            file = self.open_current()?;
        }
        let n = file
            .write(&line)
            .map_err(|e| err_at("append to", &self.current(), e))?;
        if n != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "append to {}: short write ({n} of {} bytes)",
                    self.current().display(),
                    line.len()
                ),
            ));
        }
        Ok(())
    }

    /// Every event in the journal, oldest first (the rotated file, then the current one).
    /// Lines that do not parse (a torn last line) are skipped.
    pub fn read(&self) -> io::Result<Vec<Event>> {
        let mut out = Vec::new();
        for path in [self.rotated(), self.current()] {
            match std::fs::read(&path) {
                Ok(data) => out.extend(parse_lines(&data)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(err_at("read", &path, e)),
            }
        }
        Ok(out)
    }
}

fn libc_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// The events of complete lines.
pub(crate) fn parse_lines(data: &[u8]) -> impl Iterator<Item = Event> + '_ {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| Event::parse(l).ok())
}

/// Read what `f` has from its position to its end.
pub(crate) fn read_rest(f: &mut File, out: &mut Vec<u8>) -> io::Result<()> {
    f.read_to_end(out).map(drop)
}

/// The inode of an open file.
pub(crate) fn inode(f: &File) -> io::Result<u64> {
    f.metadata().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Type};

    #[test]
    fn concurrent_writers_give_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("events"));
        std::thread::scope(|s| {
            for t in 0..10 {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..100 {
                        let ev = Event::now(Type::Container, Action::Start, format!("c{t}"))
                            .attr("n", i.to_string())
                            // Long enough lines that torn writes would show.
                            .attr("pad", "x".repeat(200 + t * 37));
                        j.append(&ev).unwrap();
                    }
                });
            }
        });
        let data = std::fs::read(j.current()).unwrap();
        let lines: Vec<&[u8]> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 1000);
        for l in &lines {
            Event::parse(l).unwrap();
        }
        // Each writer's events in its order.
        let evs = j.read().unwrap();
        for t in 0..10 {
            let ns: Vec<u32> = evs
                .iter()
                .filter(|e| e.actor.id == format!("c{t}"))
                .map(|e| e.attribute("n").unwrap().parse().unwrap())
                .collect();
            assert_eq!(ns, (0..100).collect::<Vec<_>>());
        }
    }

    #[test]
    fn rotation_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path()).with_max_bytes(4096);
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..300 {
                        let ev = Event::now(Type::Volume, Action::Create, format!("v{t}-{i}"));
                        j.append(&ev).unwrap();
                    }
                });
            }
        });
        let cur = std::fs::metadata(j.current()).unwrap().len();
        let old = std::fs::metadata(j.rotated()).unwrap().len();
        // At most one line past the limit each (a line is ~200 bytes).
        assert!(cur < 4096 + 4 * 300, "current {cur}");
        assert!(old < 4096 + 4 * 300, "rotated {old}");
        let evs = j.read().unwrap();
        assert!(evs.len() < 1200 && evs.len() > 20, "{}", evs.len());
        // The newest event survives.
        j.append(&Event::now(Type::Volume, Action::Destroy, "last"))
            .unwrap();
        assert_eq!(j.read().unwrap().last().unwrap().actor.id, "last");
    }
}
