//! Hard limits on what one layer may make us write, and a reader that bounds the tar headers.
//!
//! Entry count and file-content bytes are checked against each header before anything is
//! written. The tar crate reads a GNU long name or PAX header whole into memory, whatever size
//! it claims; [`Metered`] caps those: besides the content of the entry being extracted, at most
//! [`HEADER_BUDGET`] bytes may be read before the next entry shows up.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::error::Error;

/// Limits for one layer.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Entries in the archive (every member: files, dirs, links, whiteouts).
    pub max_entries: u64,
    /// Uncompressed bytes of file content (the sizes in the headers); any data after the
    /// end-of-archive marker counts too.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1_000_000,
            max_bytes: 64 << 30,
        }
    }
}

/// What one extraction did.
#[derive(Debug, Default)]
pub struct UnpackStats {
    pub entries: u64,
    /// Content bytes, as the headers declare them.
    pub bytes: u64,
}

impl Limits {
    pub(crate) fn entries_exceeded(&self) -> Error {
        Error::Limit {
            what: "layer entry count".into(),
            limit: self.max_entries,
            knob: "max-layer-entries",
        }
    }

    pub(crate) fn size_exceeded(&self) -> Error {
        Error::Limit {
            what: "layer size".into(),
            limit: self.max_bytes,
            knob: "max-layer-size",
        }
    }
}

impl UnpackStats {
    /// Count one more entry of `size` content bytes, failing before it is written if that
    /// crosses a limit.
    pub(crate) fn admit(&mut self, size: u64, limits: &Limits) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > limits.max_entries {
            return Err(limits.entries_exceeded());
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > limits.max_bytes {
            return Err(limits.size_exceeded());
        }
        Ok(())
    }
}

/// Bytes of tar headers (ustar blocks, GNU long names, PAX records) allowed per entry.
pub(crate) const HEADER_BUDGET: u64 = 16 << 20;

#[derive(Debug)]
struct Meter {
    pos: Cell<u64>,
    limit: Cell<u64>,
    tripped: Cell<bool>,
}

/// A reader that fails once it is read past its current allowance.
pub(crate) struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

/// The other end of a [`Metered`] reader, kept while the tar crate owns the reader.
#[derive(Clone, Debug)]
pub(crate) struct MeterHandle {
    meter: Rc<Meter>,
    budget: u64,
}

impl<R: Read> Metered<R> {
    /// A reader allowed `budget` bytes of headers before the first entry.
    pub(crate) fn new(inner: R, budget: u64) -> (Self, MeterHandle) {
        let meter = Rc::new(Meter {
            pos: Cell::new(0),
            limit: Cell::new(budget),
            tripped: Cell::new(false),
        });
        let handle = MeterHandle {
            meter: meter.clone(),
            budget,
        };
        (Metered { inner, meter }, handle)
    }

    /// The rest of the stream, unbounded (the caller bounds it).
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl MeterHandle {
    /// An entry with `size` content bytes was just read: allow its content (padded to the
    /// 512-byte block) and the next entry's headers.
    pub(crate) fn allow(&self, size: u64) {
        let padded = size.saturating_add(511) & !511;
        let limit = self
            .meter
            .pos
            .get()
            .saturating_add(padded)
            .saturating_add(self.budget);
        self.meter.limit.set(limit);
    }

    /// Whether a read failed because the headers of one entry were too large.
    pub(crate) fn tripped(&self) -> bool {
        self.meter.tripped.get()
    }

    pub(crate) fn budget(&self) -> u64 {
        self.budget
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let m = &self.meter;
        let left = m.limit.get().saturating_sub(m.pos.get());
        if left == 0 && !buf.is_empty() {
            m.tripped.set(true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "tar headers of one entry exceed the header budget",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        m.pos.set(m.pos.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(l.max_entries, 1_000_000);
        assert_eq!(l.max_bytes, 64 * 1024 * 1024 * 1024);
    }

    #[test]
    fn admit_checks_before_counting_past_the_limit() {
        let limits = Limits {
            max_entries: 2,
            max_bytes: 100,
        };
        let mut s = UnpackStats::default();
        s.admit(60, &limits).unwrap();
        s.admit(40, &limits).unwrap();
        match s.admit(0, &limits) {
            Err(Error::Limit { knob, limit, .. }) => {
                assert_eq!(knob, "max-layer-entries");
                assert_eq!(limit, 2);
            }
            other => panic!("{other:?}"),
        }
        let mut s = UnpackStats::default();
        match s.admit(101, &limits) {
            Err(Error::Limit { knob, what, .. }) => {
                assert_eq!(knob, "max-layer-size");
                assert_eq!(what, "layer size");
            }
            other => panic!("{other:?}"),
        }
        let mut s = UnpackStats::default();
        s.admit(u64::MAX, &Limits::default()).unwrap_err();
    }

    #[test]
    fn metered_reader_stops_at_the_allowance() {
        let data = vec![7u8; 4096];
        let (mut r, h) = Metered::new(&data[..], 100);
        let mut buf = vec![0; 4096];
        let mut got = 0;
        loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("read past the budget"),
                Ok(n) => got += n,
                Err(_) => break,
            }
        }
        assert_eq!(got, 100);
        assert!(h.tripped());

        // An entry of 600 bytes allows 1024 (padded) more plus the budget again.
        h.allow(600);
        let mut got = 0;
        while let Ok(n) = r.read(&mut buf) {
            assert!(n > 0);
            got += n;
        }
        assert_eq!(got, 1024 + 100);
    }

    #[test]
    fn metered_reader_passes_short_streams() {
        let (mut r, h) = Metered::new(&b"abc"[..], 100);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(!h.tripped());
    }
}
