//! Reading log files forward, one complete line at a time.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::entry::{parse_entry, EntryRef};
use super::files::{FileId, LogFile};
use super::io_context;

/// Bytes read from a file at a time.
const CHUNK: usize = 64 * 1024;

/// Lines longer than this are not entries any writer makes; they are skipped unread.
pub(crate) const MAX_RECORD: usize = 1 << 20;

/// A place in a snapshot of a log's files: (index of the file, oldest first; byte offset).
pub(crate) type Pos = (usize, u64);

/// Reads the complete lines of one file from an offset on. A line still being written (no
/// newline yet) is held back until it is complete, so the file can be read again as it grows.
pub(crate) struct Cursor {
    file: File,
    id: FileId,
    path: PathBuf,
    /// File offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    /// Index in `buf` of the first byte not returned yet.
    start: usize,
    /// Discarding an overlong line up to its newline.
    skipping: bool,
}

impl Cursor {
    /// Read `file` from `offset` on.
    pub fn new(file: LogFile, offset: u64) -> Self {
        Cursor {
            file: file.file,
            id: file.id,
            path: file.path,
            base: offset,
            buf: Vec::new(),
            start: 0,
            skipping: false,
        }
    }

    /// The identity of the file being read.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// The next complete line (without its newline) and its offset, or `None` if no complete
    /// line is available now.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if let Some(len) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let start = self.start;
                self.start += len + 1;
                if self.skipping || len > MAX_RECORD {
                    self.skipping = false;
                    continue;
                }
                let offset = self.base + start as u64;
                return Ok(Some((offset, &self.buf[start..start + len])));
            }
            if self.skipping || self.buf.len() - self.start > MAX_RECORD {
                self.skipping = true;
                self.start = self.buf.len();
            }
            self.compact();
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    /// If the file is now shorter than what was read (it was truncated), start over from its
    /// beginning.
    pub fn rewind_if_truncated(&mut self) -> io::Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(|e| io_context(e, "examining log file", &self.path))?
            .len();
        if len < self.base + self.buf.len() as u64 {
            self.base = 0;
            self.buf.clear();
            self.start = 0;
            self.skipping = false;
        }
        Ok(())
    }

    /// Drop the bytes already returned from the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
    }

    /// Append what the file has next to the buffer; how many bytes that was.
    fn fill(&mut self) -> io::Result<usize> {
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let offset = self.base + old as u64;
        let result = loop {
            match self.file.read_at(&mut self.buf[old..], offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        result.map_err(|e| io_context(e, "reading log file", &self.path))
    }
}

/// Pass every well-formed entry of `files` from `from` on to `sink`, with its position. Returns
/// the cursor of the last file, positioned after its last complete line (for following).
pub(crate) fn read_range(
    files: &[LogFile],
    from: Pos,
    sink: &mut dyn FnMut(Pos, EntryRef<'_>) -> io::Result<()>,
) -> io::Result<Option<Cursor>> {
    let mut last = None;
    for (index, file) in files.iter().enumerate().skip(from.0) {
        let dup = file
            .file
            .try_clone()
            .map_err(|e| io_context(e, "duplicating descriptor of log file", &file.path))?;
        let offset = if index == from.0 { from.1 } else { 0 };
        let mut cursor = Cursor::new(
            LogFile {
                file: dup,
                id: file.id,
                path: file.path.clone(),
            },
            offset,
        );
        while let Some((offset, line)) = cursor.next_line()? {
            if let Some(entry) = parse_entry(line) {
                sink((index, offset), entry)?;
            }
        }
        last = Some(cursor);
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cursor_on(path: &std::path::Path, offset: u64) -> Cursor {
        let file = File::open(path).unwrap();
        let id = super::super::files::file_id(&file.metadata().unwrap());
        Cursor::new(
            LogFile {
                file,
                id,
                path: path.to_path_buf(),
            },
            offset,
        )
    }

    #[test]
    fn holds_back_unfinished_lines_and_skips_overlong_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"one\n").unwrap();
        w.write_all(&vec![b'x'; MAX_RECORD + 10]).unwrap();
        w.write_all(b"\ntwo\nthr").unwrap();
        let mut c = cursor_on(&path, 0);
        assert_eq!(c.next_line().unwrap(), Some((0, &b"one"[..])));
        let two_at = 4 + MAX_RECORD as u64 + 11;
        assert_eq!(c.next_line().unwrap(), Some((two_at, &b"two"[..])));
        assert_eq!(c.next_line().unwrap(), None);
        w.write_all(b"ee\n").unwrap();
        assert_eq!(c.next_line().unwrap(), Some((two_at + 4, &b"three"[..])));
        assert_eq!(c.next_line().unwrap(), None);

        w.set_len(0).unwrap();
        c.rewind_if_truncated().unwrap();
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"four\n").unwrap();
        assert_eq!(c.next_line().unwrap(), Some((0, &b"four"[..])));
    }
}
