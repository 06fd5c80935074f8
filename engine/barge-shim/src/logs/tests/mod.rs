//! Tests of writing and reading logs with real files.

mod filters;
mod follow;
mod rotation;
mod roundtrip;
mod tail;

use std::fs;
use std::path::Path;

use barge_util::time::rfc3339_nanos;

use super::{read_logs, ReadOptions, Stream};

/// Read the whole log at `path` with `opts` (not following): (stdout, stderr).
fn read_all(path: &Path, opts: &ReadOptions) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    read_logs(path, opts, (&mut out, &mut err), &mut || true).unwrap();
    (out, err)
}

/// Same, as text.
fn read_text(path: &Path, opts: &ReadOptions) -> (String, String) {
    let (out, err) = read_all(path, opts);
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// One log line at `secs` seconds (and no nanoseconds).
fn line(secs: i64, stream: Stream, partial: bool, content: &str) -> String {
    let tag = if partial { "P" } else { "F" };
    format!(
        "{} {} {tag} {content}\n",
        rfc3339_nanos(secs, 0),
        stream.as_str()
    )
}

/// Write `lines` as the file at `path`.
fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.concat()).unwrap();
}

/// The lines `line {from}` .. `line {to-1}`, each with its newline.
fn numbered(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}
