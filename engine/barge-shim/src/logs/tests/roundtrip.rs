//! Writing byte streams and reading them back exactly.

use std::fs;

use super::read_all;
use crate::logs::{parse_line, LogConfig, LogWriter, ReadOptions, Stream, MAX_LINE};

#[test]
fn reproduces_mixed_streams_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let big: Vec<u8> = (0..40 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
    let (mut want_out, mut want_err) = (Vec::new(), Vec::new());
    let mut feed = |writer: &mut LogWriter, stream: Stream, data: &[u8]| {
        writer.write(stream, data).unwrap();
        match stream {
            Stream::Stdout => want_out.extend_from_slice(data),
            Stream::Stderr => want_err.extend_from_slice(data),
        }
    };
    feed(&mut writer, Stream::Stdout, b"hello\nwor");
    feed(&mut writer, Stream::Stderr, b"oops\n");
    feed(
        &mut writer,
        Stream::Stdout,
        b"ld\n\n\ttabs and  spaces \r\n",
    );
    feed(&mut writer, Stream::Stderr, &big);
    feed(&mut writer, Stream::Stdout, b"no newline yet");
    writer.flush_partial().unwrap();
    feed(&mut writer, Stream::Stdout, b", now one\n\xff\xfe binary\n");
    writer.flush_partial().unwrap();
    drop(writer);

    let (out, err) = read_all(&path, &ReadOptions::default());
    assert_eq!(out, want_out);
    assert_eq!(err, want_err);

    let stdout_only = ReadOptions {
        stderr: false,
        ..ReadOptions::default()
    };
    assert_eq!(read_all(&path, &stdout_only), (want_out, Vec::new()));
}

#[test]
fn writes_well_formed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
    writer.write(Stream::Stdout, b"hello wo").unwrap();
    writer.write(Stream::Stdout, b"rld\n").unwrap();
    writer
        .write(Stream::Stderr, &vec![b'x'; 40 * 1024])
        .unwrap();
    writer.write(Stream::Stdout, &vec![b'y'; MAX_LINE]).unwrap();
    writer.write(Stream::Stdout, b"\n").unwrap();
    writer.flush_partial().unwrap();

    let text = fs::read(&path).unwrap();
    let entries: Vec<_> = text
        .split_inclusive(|&b| b == b'\n')
        .map(|l| parse_line(l).expect("a well-formed entry"))
        .collect();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.stream, e.partial, e.content.len()))
        .collect();
    assert_eq!(
        summary,
        [
            (Stream::Stdout, false, 11),
            (Stream::Stderr, true, MAX_LINE),
            (Stream::Stderr, true, MAX_LINE),
            (Stream::Stdout, false, MAX_LINE),
            (Stream::Stderr, true, 8 * 1024),
        ]
    );
    assert_eq!(entries[0].content, b"hello world");
    let line = std::str::from_utf8(text.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert!(line.ends_with("Z stdout F hello world"), "{line}");
    assert_eq!(line.find(' '), Some(30), "9 fractional digits: {line}");
    assert!(entries.windows(2).all(|w| w[0].time <= w[1].time));
}

#[test]
fn creates_the_file_0640_and_reopens_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777 & !0o022, 0o640 & !0o022);
    writer.write(Stream::Stdout, b"old\n").unwrap();
    fs::remove_file(&path).unwrap();
    writer.reopen().unwrap();
    writer.write(Stream::Stdout, b"new\n").unwrap();
    assert_eq!(read_all(&path, &ReadOptions::default()).0, b"new\n");
}

#[test]
fn rejects_zero_files_and_reports_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_size: None,
        max_files: 0,
    };
    assert!(LogWriter::open(&dir.path().join("c.log"), cfg).is_err());
    let missing = dir.path().join("no/such/dir/c.log");
    let err = LogWriter::open(&missing, LogConfig::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_missing_log_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never-written.log");
    assert_eq!(
        read_all(&path, &ReadOptions::default()),
        (Vec::new(), Vec::new())
    );
}
