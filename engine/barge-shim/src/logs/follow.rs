//! Following a log as it is written (`barge logs -f`), across rotations.

use std::io;
use std::path::{Path, PathBuf};

use super::cursor::Cursor;
use super::entry::{parse_entry, EntryRef};
use super::files::{list, open_if, FileId, LogFile};
use super::io_context;

/// How many files one poll moves through at most before leaving the rest to the next poll.
const MAX_STEPS_PER_POLL: usize = 1000;

/// How many times a poll lists the files to get two listings that agree (none taken while
/// the writer was renaming) before it goes on with the last one.
const LISTING_ATTEMPTS: usize = 5;

/// Reads what is added to a log: the rest of the file being read, then the files that came after
/// it, in order, by identity (not by name, which changes on rotation).
pub(crate) struct Follower {
    path: PathBuf,
    /// The file being read.
    current: Option<Cursor>,
    /// Files already read (or being read) that still exist under some name. They are kept open
    /// so that their identities cannot be reused by new files while they are remembered.
    seen: Vec<LogFile>,
}

impl Follower {
    /// Follow the log at `path` from `current` on; `seen` are the files read before it
    /// (including it).
    pub fn new(path: &Path, current: Option<Cursor>, seen: Vec<LogFile>) -> Self {
        Follower {
            path: path.to_path_buf(),
            current,
            seen,
        }
    }

    /// Pass every entry added since the last poll to `sink`, in order.
    ///
    /// The file being read is read to its end; if the log's `path` is another file now, it was
    /// rotated (or removed): since the writer has moved on, the old file is read to its end once
    /// more, then the next file not read yet is opened (the oldest first, e.g. `path.1` if the log
    /// rotated twice since the last poll), until the file at `path` is the one being read.
    pub fn poll(&mut self, sink: &mut dyn FnMut(EntryRef<'_>) -> io::Result<()>) -> io::Result<()> {
        for _ in 0..MAX_STEPS_PER_POLL {
            if let Some(cursor) = &mut self.current {
                cursor.rewind_if_truncated()?;
                drain(cursor, sink)?;
            }
            let listing = stable_list(&self.path)?;
            let live = listing
                .last()
                .filter(|(name, _)| *name == self.path)
                .map(|(_, id)| *id);
            if let Some(cursor) = &mut self.current {
                if live == Some(cursor.id()) {
                    return Ok(());
                }
                drain(cursor, sink)?;
            }

            // A file read is forgotten only once it is deleted, not when a listing misses it:
            // a listing taken while the writer renames `path.N` to `path.N+1` one by one can
            // miss a file, which would then be read again from its start. Held open, a
            // deleted file keeps its identity until it is dropped here.
            self.seen.retain(still_linked);
            let next = listing
                .iter()
                .find(|(_, id)| !self.seen.iter().any(|f| f.id == *id));
            let Some((name, id)) = next else {
                // Between renaming the old file and creating the new one; or nothing there yet.
                return Ok(());
            };
            // If it was renamed meanwhile, look again.
            if let Some(file) = open_if(name, *id)? {
                let keep = file
                    .file
                    .try_clone()
                    .map_err(|e| io_context(e, "duplicating descriptor of log file", name))?;
                self.seen.push(LogFile {
                    file: keep,
                    id: *id,
                    path: name.clone(),
                });
                self.current = Some(Cursor::new(file, 0));
            }
        }
        Ok(())
    }
}

/// The log's files, from two listings in a row that agree: a rotation renames the files one
/// by one, and a listing taken meanwhile can show one file under two names or miss one.
fn stable_list(path: &Path) -> io::Result<Vec<(PathBuf, FileId)>> {
    let mut last = list(path)?;
    for _ in 1..LISTING_ATTEMPTS {
        let again = list(path)?;
        if again == last {
            break;
        }
        last = again;
    }
    Ok(last)
}

/// Whether `f` still has a name (a rotated-out file is unlinked). An error keeps it.
fn still_linked(f: &LogFile) -> bool {
    use std::os::unix::fs::MetadataExt;
    f.file.metadata().map(|m| m.nlink() > 0).unwrap_or(true)
}

/// Pass the complete entries available in `cursor`'s file to `sink`.
fn drain(
    cursor: &mut Cursor,
    sink: &mut dyn FnMut(EntryRef<'_>) -> io::Result<()>,
) -> io::Result<()> {
    while let Some((_, line)) = cursor.next_line()? {
        if let Some(entry) = parse_entry(line) {
            sink(entry)?;
        }
    }
    Ok(())
}
