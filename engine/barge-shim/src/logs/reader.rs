//! Reading a container's log back (`barge logs`): the byte streams as the container wrote them,
//! with `--tail`, `--since`, `--until`, `--timestamps`, stream selection and `--follow`.

use std::io::{self, Write};
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::cursor::read_range;
use super::emit::Emitter;
use super::files::snapshot;
use super::follow::Follower;
use super::tail::{tail_start, Start};
use super::timestamp::now;
use super::Stream;

pub use super::entry::{parse_line, LogEntry};
pub use super::timestamp::parse_timestamp;

/// How long following waits between looks at the log.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What [`read_logs`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last N logical lines (a logical line is `P` entries and their final `F` entry,
    /// or trailing `P` entries), counting those the other options show, ordered by their first
    /// entry.
    pub tail: Option<usize>,
    /// Only logical lines whose first entry is at or after this time (seconds, nanoseconds).
    pub since: Option<(i64, u32)>,
    /// Only logical lines whose first entry is at or before this time; following stops once the
    /// clock has passed it.
    pub until: Option<(i64, u32)>,
    /// Prefix each logical line with its first entry's RFC 3339 timestamp and a space
    /// (`docker logs -t`).
    pub timestamps: bool,
    /// Show stdout.
    pub stdout: bool,
    /// Show stderr.
    pub stderr: bool,
    /// Keep reading as the log grows.
    pub follow: bool,
}

impl Default for ReadOptions {
    /// Everything, both streams, no timestamps, no following.
    fn default() -> Self {
        ReadOptions {
            tail: None,
            since: None,
            until: None,
            timestamps: false,
            stdout: true,
            stderr: true,
            follow: false,
        }
    }
}

impl ReadOptions {
    /// Whether `stream` is shown.
    pub(crate) fn wants(&self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

/// Write the log at `path` to `out` (stdout entries to `out.0`, stderr entries to `out.1`),
/// reconstructing the original byte streams: `F` entries get their newline back, `P` entries
/// don't. Reads rotated files oldest first (`path.N` .. `path.1`, `path`); malformed lines are
/// skipped; a log that does not exist (yet) is empty.
///
/// With `follow`: after the existing content, keeps polling every 100 ms for new entries,
/// across rotations (the rest of a rotated file is read before the next one), and returns once
/// `done()` returns true (or `until` has passed) and everything available has been read.
///
/// Output that fails with a broken pipe ends reading quietly (`Ok`).
pub fn read_logs(
    path: &Path,
    opts: &ReadOptions,
    out: (&mut dyn Write, &mut dyn Write),
    done: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    // Shorten both outputs' lifetimes to one.
    let (stdout, stderr): (&mut dyn Write, &mut dyn Write) = (out.0, out.1);
    let mut emitter = Emitter::new(opts, (stdout, stderr));
    match copy_logs(path, opts, &mut emitter, done) {
        Err(_) if emitter.broken() => Ok(()),
        result => result,
    }
}

/// [`read_logs`], with broken pipes still errors.
fn copy_logs(
    path: &Path,
    opts: &ReadOptions,
    emitter: &mut Emitter<'_>,
    done: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let files = snapshot(path)?;
    let start = match opts.tail {
        Some(n) => tail_start(&files, opts, n)?,
        None => Start::BEGINNING,
    };
    emitter.start_inside(start.open);
    let last = read_range(&files, start.pos, &mut |_, e| emitter.entry(e))?;
    emitter.flush()?;
    if !opts.follow {
        return Ok(());
    }

    let mut follower = Follower::new(path, last, files);
    loop {
        let finished = done() || opts.until.is_some_and(|until| now() > until);
        follower.poll(&mut |e| emitter.entry(e))?;
        emitter.flush()?;
        if finished {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
}
