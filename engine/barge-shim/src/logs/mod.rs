//! Container logs in the Kubernetes CRI log format, the one containerd's CRI plugin writes and
//! kubelet reads: one entry per line,
//!
//! ```text
//! <RFC 3339 UTC timestamp, 9 fractional digits> <stdout|stderr> <F|P> <content>\n
//! 2016-10-06T00:17:09.669794202Z stdout F hello world
//! ```
//!
//! `F` (full) entries ended with a newline in the container's stream (the newline is not part of
//! the content); `P` (partial) entries did not, so more of the same logical line follows, or the
//! stream ended there.
//!
//! [`LogWriter`] (in the shim) turns the container's byte streams into entries and rotates the
//! file by size the way docker's `max-size`/`max-file` do; [`read_logs`] (for `barge logs`)
//! reconstructs the byte streams, with tail, time filters, timestamps and follow.

mod backward;
mod cursor;
mod emit;
mod entry;
mod files;
mod follow;
pub mod reader;
mod tail;
mod timestamp;
pub mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

pub use reader::{parse_line, parse_timestamp, read_logs, LogEntry, ReadOptions};
pub use writer::{parse_size, LogConfig, LogWriter, MAX_LINE};

/// Which of a container's output streams an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name used in log lines: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream named `s` (`stdout` or `stderr`, exactly), if any.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }

    /// 0 for stdout, 1 for stderr: an index into per-stream arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// `err` with a message saying what was being done (`what`) to which file.
pub(crate) fn io_context(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}
