//! Turning entries back into the container's byte streams, for `barge logs`.

use std::io::{self, Write};

use barge_util::time::rfc3339_nanos;

use super::entry::EntryRef;
use super::reader::ReadOptions;
use super::Stream;

/// Whether a logical line starting with entry `e` is shown: its stream is wanted and its first
/// entry's time is within `since..=until`.
pub(crate) fn selects(opts: &ReadOptions, e: &EntryRef<'_>) -> bool {
    opts.wants(e.stream)
        && opts.since.is_none_or(|since| e.time >= since)
        && opts.until.is_none_or(|until| e.time <= until)
}

/// Writes the entries it is given to the output of their stream: `F` entries with their newline
/// back, `P` entries without; with `timestamps`, each logical line prefixed by the time of its
/// first entry. A logical line is shown or not as a whole, decided at its first entry.
pub(crate) struct Emitter<'a> {
    opts: &'a ReadOptions,
    out: (&'a mut dyn Write, &'a mut dyn Write),
    /// Per stream: `None` between logical lines; `Some(shown)` inside one.
    lines: [Option<bool>; 2],
    /// Reused buffer holding one entry's output.
    scratch: Vec<u8>,
    /// An output was closed (broken pipe): the reader stops quietly.
    broken: bool,
}

impl<'a> Emitter<'a> {
    pub fn new(opts: &'a ReadOptions, out: (&'a mut dyn Write, &'a mut dyn Write)) -> Self {
        Emitter {
            opts,
            out,
            lines: [None, None],
            scratch: Vec::new(),
            broken: false,
        }
    }

    /// Start with the streams marked in `open` inside a logical line whose start is not shown
    /// (so its remaining entries are not shown either).
    pub fn start_inside(&mut self, open: [bool; 2]) {
        self.lines = open.map(|open| open.then_some(false));
    }

    /// Write one entry (if its logical line is shown).
    pub fn entry(&mut self, e: EntryRef<'_>) -> io::Result<()> {
        let i = e.stream.index();
        let (starts_line, shown) = match self.lines[i] {
            Some(shown) => (false, shown),
            None => (true, selects(self.opts, &e)),
        };
        self.lines[i] = e.partial.then_some(shown);
        if !shown {
            return Ok(());
        }
        self.scratch.clear();
        if starts_line && self.opts.timestamps {
            self.scratch
                .extend_from_slice(rfc3339_nanos(e.time.0, e.time.1).as_bytes());
            self.scratch.push(b' ');
        }
        self.scratch.extend_from_slice(e.content);
        if !e.partial {
            self.scratch.push(b'\n');
        }
        self.write(e.stream)
    }

    /// Flush both outputs.
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let result = self.output(stream).flush();
            result.map_err(|e| self.failed(stream, e))?;
        }
        Ok(())
    }

    /// Whether an output was closed by its reader (so reading should end quietly).
    pub fn broken(&self) -> bool {
        self.broken
    }

    fn write(&mut self, stream: Stream) -> io::Result<()> {
        let out = match stream {
            Stream::Stdout => &mut *self.out.0,
            Stream::Stderr => &mut *self.out.1,
        };
        let result = out.write_all(&self.scratch);
        result.map_err(|e| self.failed(stream, e))
    }

    fn output(&mut self, stream: Stream) -> &mut dyn Write {
        match stream {
            Stream::Stdout => &mut *self.out.0,
            Stream::Stderr => &mut *self.out.1,
        }
    }

    /// Note a broken pipe; say which output failed.
    fn failed(&mut self, stream: Stream, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.broken = true;
        }
        io::Error::new(
            e.kind(),
            format!("writing the log's {} to the output: {e}", stream.as_str()),
        )
    }
}
