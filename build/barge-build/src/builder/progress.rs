//! Where a build reports what it does: a [`Sink`] receives the steps, RUN output, cache hits,
//! notes and the image made. [`Terminal`] is `barge build`'s own output (`#3 [stage] RUN …`,
//! `#3 DONE 0.4s`); the API daemon has its own sink writing docker's JSON message stream.

use std::io::Write;

use barge_image::digest::Digest;

use super::Progress;

/// What the builder reports, in order.
pub trait Sink {
    /// Step `n` of about `total` starts: `FROM …` or an instruction's text, in stage `stage`.
    fn step(&mut self, n: usize, total: usize, stage: &str, text: &str);
    /// Output of the RUN being executed (stdout and stderr, as they come).
    fn output(&mut self, bytes: &[u8]);
    /// Step `n` was answered from the cache.
    fn cached(&mut self, n: usize);
    /// Step `n` ran, in `secs` seconds.
    fn done(&mut self, n: usize, secs: f64);
    /// Something worth a line: a base image being pulled, a warning.
    fn note(&mut self, text: &str);
    /// The final image was written.
    fn image(&mut self, id: &Digest);
    /// Should the build stop before its next step (whoever asked for it went away)?
    fn cancelled(&self) -> bool {
        false
    }
}

/// `barge build`'s output on a terminal or in a log.
pub struct Terminal<W: Write> {
    out: W,
    style: Progress,
}

impl<W: Write> Terminal<W> {
    pub fn new(out: W, style: Progress) -> Terminal<W> {
        Terminal { out, style }
    }

    fn say(&mut self, text: &str) {
        let _ = match self.style {
            Progress::Plain => writeln!(self.out, "{text}"),
            Progress::Tty => writeln!(self.out, "\x1b[1m{text}\x1b[0m"),
        };
    }
}

impl<W: Write> Sink for Terminal<W> {
    fn step(&mut self, n: usize, _total: usize, stage: &str, text: &str) {
        self.say(&format!("#{n} [{stage}] {text}"));
    }
    fn output(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
        let _ = self.out.flush();
    }
    fn cached(&mut self, n: usize) {
        let _ = writeln!(self.out, "#{n} CACHED");
    }
    fn done(&mut self, n: usize, secs: f64) {
        let _ = writeln!(self.out, "#{n} DONE {secs:.1}s");
    }
    fn note(&mut self, text: &str) {
        if text.starts_with('[') {
            // Warnings are plain lines.
            let _ = writeln!(self.out, "{text}");
        } else {
            self.say(&format!("   {text}"));
        }
    }
    fn image(&mut self, id: &Digest) {
        let _ = writeln!(self.out, "writing image {id}");
    }
}

/// Reports nothing (`barge build -q`).
pub struct Quiet;

impl Sink for Quiet {
    fn step(&mut self, _: usize, _: usize, _: &str, _: &str) {}
    fn output(&mut self, _: &[u8]) {}
    fn cached(&mut self, _: usize) {}
    fn done(&mut self, _: usize, _: f64) {}
    fn note(&mut self, _: &str) {}
    fn image(&mut self, _: &Digest) {}
}
