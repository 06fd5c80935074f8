//! `--tail`: the last N logical lines, across rotated files.

use super::{line, numbered, read_all, read_text, write_lines};
use crate::logs::files::rotated_path;
use crate::logs::{LogConfig, LogWriter, ReadOptions, Stream};

fn tail(n: usize) -> ReadOptions {
    ReadOptions {
        tail: Some(n),
        ..ReadOptions::default()
    }
}

#[test]
fn tails_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let cfg = LogConfig {
        max_size: Some(1024),
        max_files: 5,
    };
    let mut writer = LogWriter::open(&path, cfg).unwrap();
    for i in 0..80 {
        writer
            .write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert!(rotated_path(&path, 3).exists());
    assert_eq!(read_text(&path, &tail(50)).0, numbered(30, 80));
    assert_eq!(read_text(&path, &tail(1)).0, numbered(79, 80));
    assert_eq!(read_text(&path, &tail(0)).0, "");
    let all = read_text(&path, &ReadOptions::default()).0;
    assert_eq!(read_text(&path, &tail(1000)).0, all);
}

#[test]
fn tails_a_large_file_reading_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
    writer
        .write(Stream::Stdout, numbered(0, 20_000).as_bytes())
        .unwrap();
    writer.write(Stream::Stderr, b"err\n").unwrap();
    writer
        .write(Stream::Stdout, numbered(20_000, 20_010).as_bytes())
        .unwrap();
    assert_eq!(
        read_text(&path, &tail(3)),
        (numbered(20_007, 20_010), String::new())
    );
    assert_eq!(
        read_text(&path, &tail(11)),
        (numbered(20_000, 20_010), "err\n".to_string())
    );
    let stderr_only = ReadOptions {
        stdout: false,
        ..tail(1)
    };
    assert_eq!(
        read_text(&path, &stderr_only),
        (String::new(), "err\n".into())
    );
}

#[test]
fn counts_logical_lines_by_their_first_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let (o, e) = (Stream::Stdout, Stream::Stderr);
    write_lines(
        &path,
        &[
            line(1, o, true, "a"),
            line(2, e, false, "e1"),
            line(3, o, false, "b"),
            line(4, o, true, "c"),
            line(5, e, false, "e2"),
            line(6, o, true, "d"),
        ],
    );
    let text = |opts| read_text(&path, &opts);
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(text(tail(1)), s("", "e2\n"));
    assert_eq!(text(tail(2)), s("cd", "e2\n"));
    assert_eq!(text(tail(3)), s("cd", "e1\ne2\n"));
    assert_eq!(text(tail(4)), s("ab\ncd", "e1\ne2\n"));
    let stdout_only = |n| ReadOptions {
        stderr: false,
        ..tail(n)
    };
    assert_eq!(text(stdout_only(1)), s("cd", ""));
    assert_eq!(text(stdout_only(2)), s("ab\ncd", ""));
}

/// A deterministic pseudo-random log of `n` entries over three files, checked against a direct
/// computation of the last N logical lines for many N and options.
#[test]
fn matches_a_reference_on_generated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.log");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let entries: Vec<(i64, Stream, bool, String)> = (0..600)
        .map(|i| {
            let stream = if random(3) == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            (i / 2, stream, random(4) == 0, format!("{i}"))
        })
        .collect();
    let lines: Vec<String> = entries
        .iter()
        .map(|(t, s, p, c)| line(*t, *s, *p, c))
        .collect();
    write_lines(&rotated_path(&path, 2), &lines[..200]);
    write_lines(&rotated_path(&path, 1), &lines[200..350]);
    write_lines(&path, &lines[350..]);

    for n in [0, 1, 2, 3, 5, 17, 100, 250, 1000] {
        for (stdout, stderr) in [(true, true), (true, false), (false, true)] {
            for since in [None, Some(100), Some(290)] {
                let opts = ReadOptions {
                    tail: Some(n),
                    since: since.map(|s| (s, 0)),
                    stdout,
                    stderr,
                    ..ReadOptions::default()
                };
                let want = reference(&entries, &opts);
                assert_eq!(read_all(&path, &opts), want, "{opts:?}");
            }
        }
    }
}

/// The output of `opts` on `entries`, computed directly.
fn reference(entries: &[(i64, Stream, bool, String)], opts: &ReadOptions) -> (Vec<u8>, Vec<u8>) {
    // Index of the first entry of the logical line each entry belongs to.
    let mut first_of = Vec::new();
    let mut open: [Option<usize>; 2] = [None, None];
    for (i, (_, stream, partial, _)) in entries.iter().enumerate() {
        let first = open[stream.index()].unwrap_or(i);
        first_of.push(first);
        open[stream.index()] = partial.then_some(first);
    }
    let shown = |i: usize| {
        let (t, s, _, _) = &entries[i];
        opts.wants(*s) && opts.since.is_none_or(|since| (*t, 0) >= since)
    };
    let mut starts: Vec<usize> = (0..entries.len())
        .filter(|&i| first_of[i] == i && shown(i))
        .collect();
    if let Some(n) = opts.tail {
        starts.drain(..starts.len().saturating_sub(n));
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for (i, (_, stream, partial, content)) in entries.iter().enumerate() {
        if starts.binary_search(&first_of[i]).is_ok() {
            let to = match stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            to.extend_from_slice(content.as_bytes());
            if !partial {
                to.push(b'\n');
            }
        }
    }
    (out, err)
}
