//! `--since`, `--until`, `--timestamps`, and closed outputs.

use std::io::{self, Write};

use barge_util::time::rfc3339_nanos;

use super::{line, read_text, write_lines};
use crate::logs::{read_logs, ReadOptions, Stream};

#[test]
fn filters_logical_lines_by_their_first_entry_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let (o, e) = (Stream::Stdout, Stream::Stderr);
    let mut lines: Vec<String> = (100..=110)
        .map(|t| line(t, o, false, &format!("t{t}")))
        .collect();
    lines.insert(3, line(102, e, true, "started at 102 "));
    lines.insert(6, line(104, e, false, "ended at 104"));
    lines.insert(7, line(105, e, true, "started at 105 "));
    lines.insert(9, line(107, e, false, "ended at 107"));
    write_lines(&path, &lines);

    let opts = ReadOptions {
        since: Some((103, 0)),
        until: Some((106, 0)),
        ..ReadOptions::default()
    };
    assert_eq!(
        read_text(&path, &opts),
        (
            "t103\nt104\nt105\nt106\n".to_string(),
            "started at 105 ended at 107\n".to_string()
        )
    );
    let just_after = ReadOptions {
        since: Some((106, 1)),
        ..ReadOptions::default()
    };
    assert_eq!(read_text(&path, &just_after).0, "t107\nt108\nt109\nt110\n");
    let with_tail = ReadOptions {
        since: Some((103, 0)),
        tail: Some(2),
        ..ReadOptions::default()
    };
    assert_eq!(read_text(&path, &with_tail).0, "t109\nt110\n");
}

#[test]
fn prefixes_logical_lines_with_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let (o, e) = (Stream::Stdout, Stream::Stderr);
    write_lines(
        &path,
        &[
            line(1, o, true, "ab"),
            line(2, e, false, "err"),
            line(3, o, false, "c"),
            line(4, o, false, ""),
            line(5, o, true, "tail"),
        ],
    );
    let opts = ReadOptions {
        timestamps: true,
        ..ReadOptions::default()
    };
    let ts = |t| rfc3339_nanos(t, 0);
    assert_eq!(
        read_text(&path, &opts),
        (
            format!("{} abc\n{} \n{} tail", ts(1), ts(4), ts(5)),
            format!("{} err\n", ts(2))
        )
    );
    assert_eq!(ts(1), "1970-01-01T00:00:01.000000000Z");
}

/// An output whose reader went away.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An output that fails otherwise.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_output_ends_reading_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    write_lines(&path, &[line(1, Stream::Stdout, false, "x")]);
    let following = ReadOptions {
        follow: true,
        ..ReadOptions::default()
    };
    let mut err = Vec::new();
    // Would follow forever if the broken pipe did not end it.
    read_logs(&path, &following, (&mut Closed, &mut err), &mut || false).unwrap();

    let result = read_logs(
        &path,
        &ReadOptions::default(),
        (&mut Full, &mut err),
        &mut || true,
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("stdout"), "{message}");
}

#[test]
fn skips_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    write_lines(
        &path,
        &[
            line(1, Stream::Stdout, false, "one"),
            "garbage\n".into(),
            "\n".into(),
            line(2, Stream::Stdout, false, "two"),
            "2016-10-06T00:17:09Z stdout F torn wri".into(),
        ],
    );
    assert_eq!(read_text(&path, &ReadOptions::default()).0, "one\ntwo\n");
    let tail = ReadOptions {
        tail: Some(1),
        ..ReadOptions::default()
    };
    assert_eq!(read_text(&path, &tail).0, "two\n");
}
