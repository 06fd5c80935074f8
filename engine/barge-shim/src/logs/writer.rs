//! Writing a container's output streams as CRI log entries, rotating the file by size.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::mem;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use barge_util::time::rfc3339_nanos;

use super::files::rotate;
use super::timestamp::now;
use super::{io_context, Stream};

pub use barge_util::size::parse_size;

/// The most content one entry holds; longer lines are cut into `P` entries (as containerd does).
pub const MAX_LINE: usize = 16 * 1024;

/// Size-based rotation, as docker's `--log-opt max-size=… --log-opt max-file=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Start a new file before one would grow past this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (at least 1; with 1 the file is
    /// truncated instead of rotated).
    pub max_files: u32,
}

impl Default for LogConfig {
    /// No size limit, one file.
    fn default() -> Self {
        LogConfig {
            max_size: None,
            max_files: 1,
        }
    }
}

/// Writes a container's stdout and stderr to a CRI log file.
pub struct LogWriter {
    path: PathBuf,
    cfg: LogConfig,
    file: File,
    /// Bytes in the current file.
    size: u64,
    /// Per stream (see [`Stream::index`]): bytes not written yet because their line has not
    /// ended.
    pending: [Vec<u8>; 2],
    /// Reused buffer for formatting one entry.
    line: Vec<u8>,
}

impl LogWriter {
    /// Open (creating it with mode 0640) the log at `path` for appending.
    pub fn open(path: &Path, cfg: LogConfig) -> io::Result<Self> {
        if cfg.max_files == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "log {}: max_files must be at least 1, not 0",
                    path.display()
                ),
            ));
        }
        let (file, size) = open_append(path)?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            cfg,
            file,
            size,
            pending: Default::default(),
            line: Vec::new(),
        })
    }

    /// Feed bytes as read from the container's stream. Complete lines become `F` entries; a line
    /// longer than [`MAX_LINE`] is cut into `P` entries; an unfinished tail is kept per stream
    /// until more data or [`flush_partial`](Self::flush_partial). Each entry is written with one
    /// write(2) call. Entries are stamped with the time of the call that completes them (as
    /// containerd does), so the file stays in time order.
    ///
    /// If writing fails, the entry that failed is dropped (not retried by the next call).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let now = now();
        let mut buf = mem::take(&mut self.pending[stream.index()]);
        buf.extend_from_slice(data);
        let mut start = 0;
        let mut result = Ok(());
        while let Some((len, used, partial)) = next_entry(&buf[start..]) {
            let content = &buf[start..start + len];
            start += used;
            if let Err(e) = self.write_entry(now, stream, partial, content) {
                result = Err(e);
                break;
            }
        }
        buf.drain(..start);
        self.pending[stream.index()] = buf;
        result
    }

    /// Write what is buffered for both streams as `P` entries (when a stream closes or the
    /// container exits), so the byte stream is reproduced exactly (no newline added).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = mem::take(&mut self.pending[stream.index()]);
            if !pending.is_empty() {
                self.write_entry(now(), stream, true, &pending)?;
            }
        }
        Ok(())
    }

    /// Reopen the file (e.g. after the engine removed it); not needed for rotation.
    pub fn reopen(&mut self) -> io::Result<()> {
        let (file, size) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }

    /// Format one entry and append it, rotating first if it would not fit.
    fn write_entry(
        &mut self,
        time: (i64, u32),
        stream: Stream,
        partial: bool,
        content: &[u8],
    ) -> io::Result<()> {
        let mut line = mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(rfc3339_nanos(time.0, time.1).as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_str().as_bytes());
        line.extend_from_slice(if partial { b" P " } else { b" F " });
        line.extend_from_slice(content);
        line.push(b'\n');
        let result = self.append(&line);
        self.line = line;
        result
    }

    /// Append one formatted entry with one write, rotating first if it would not fit.
    fn append(&mut self, entry: &[u8]) -> io::Result<()> {
        let len = entry.len() as u64;
        if let Some(max) = self.cfg.max_size {
            if self.size > 0 && self.size.saturating_add(len) > max {
                self.rotate()?;
            }
        }
        self.file
            .write_all(entry)
            .map_err(|e| io_context(e, "writing log file", &self.path))?;
        self.size += len;
        Ok(())
    }

    /// Start a new, empty file: shift the old ones, or truncate when only one is kept.
    fn rotate(&mut self) -> io::Result<()> {
        if self.cfg.max_files <= 1 {
            self.file
                .set_len(0)
                .map_err(|e| io_context(e, "truncating log file", &self.path))?;
            self.size = 0;
        } else {
            rotate(&self.path, self.cfg.max_files)?;
            let (file, size) = open_append(&self.path)?;
            self.file = file;
            self.size = size;
        }
        Ok(())
    }
}

/// Where the next entry in `rest` ends: (content length, bytes consumed, partial), or `None` if
/// `rest` holds no complete entry yet.
fn next_entry(rest: &[u8]) -> Option<(usize, usize, bool)> {
    let window = &rest[..rest.len().min(MAX_LINE + 1)];
    match window.iter().position(|&b| b == b'\n') {
        Some(newline) => Some((newline, newline + 1, false)),
        None if rest.len() > MAX_LINE => Some((MAX_LINE, MAX_LINE, true)),
        None => None,
    }
}

/// Open `path` for appending, creating it with mode 0640; also its current size.
fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io_context(e, "opening log file", path))?;
    let size = file
        .metadata()
        .map_err(|e| io_context(e, "examining log file", path))?
        .len();
    Ok((file, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_entries() {
        assert_eq!(next_entry(b"ab\ncd"), Some((2, 3, false)));
        assert_eq!(next_entry(b"\n"), Some((0, 1, false)));
        assert_eq!(next_entry(b"abc"), None);
        let exact = vec![b'x'; MAX_LINE];
        assert_eq!(next_entry(&exact), None);
        let mut line = exact.clone();
        line.push(b'\n');
        assert_eq!(next_entry(&line), Some((MAX_LINE, MAX_LINE + 1, false)));
        let mut long = exact;
        long.push(b'y');
        assert_eq!(next_entry(&long), Some((MAX_LINE, MAX_LINE, true)));
    }
}
