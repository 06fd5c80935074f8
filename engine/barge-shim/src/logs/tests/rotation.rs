//! Rotation by size.

use std::fs;

use super::{numbered, read_text};
use crate::logs::files::rotated_path;
use crate::logs::{LogConfig, LogWriter, ReadOptions, Stream};

/// Write `line 0` .. `line {n-1}` to stdout of a log with `cfg`; the log's path.
fn write_numbered(dir: &std::path::Path, cfg: LogConfig, n: usize) -> std::path::PathBuf {
    let path = dir.join("c.log");
    let mut writer = LogWriter::open(&path, cfg).unwrap();
    for i in 0..n {
        writer
            .write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    path
}

/// The number of the first line in `text`, checking that the lines are consecutive and end
/// with `line {last}`.
fn first_of_consecutive(text: &str, last: usize) -> usize {
    let first: usize = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("line "))
        .and_then(|n| n.parse().ok())
        .expect("numbered lines");
    assert_eq!(text, super::numbered(first, last + 1));
    first
}

#[test]
fn keeps_max_files_with_the_newest_content() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_size: Some(1024),
        max_files: 3,
    };
    let path = write_numbered(dir.path(), cfg, 300);
    let mut files = vec![path.clone(), rotated_path(&path, 1), rotated_path(&path, 2)];
    for file in &files {
        let len = fs::metadata(file).unwrap().len();
        assert!(len > 0 && len <= 1024, "{}: {len}", file.display());
    }
    assert!(!rotated_path(&path, 3).exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);

    let (out, err) = read_text(&path, &ReadOptions::default());
    assert!(err.is_empty());
    let first = first_of_consecutive(&out, 299);
    assert!(
        first > 200,
        "only the newest files are kept: from line {first}"
    );
    // Files hold consecutive entries, oldest in the highest number.
    files.reverse();
    let concatenated: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(concatenated.lines().count(), 300 - first);
}

#[test]
fn truncates_with_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_size: Some(1024),
        max_files: 1,
    };
    let path = write_numbered(dir.path(), cfg, 300);
    assert!(fs::metadata(&path).unwrap().len() <= 1024);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    let first = first_of_consecutive(&read_text(&path, &ReadOptions::default()).0, 299);
    assert!(first > 250);
}

#[test]
fn an_entry_larger_than_max_size_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_size: Some(10),
        max_files: 2,
    };
    let path = write_numbered(dir.path(), cfg, 5);
    assert!(fs::read_to_string(&path)
        .unwrap()
        .ends_with("stdout F line 4\n"));
    assert!(fs::read_to_string(rotated_path(&path, 1))
        .unwrap()
        .ends_with("stdout F line 3\n"));
    assert_eq!(read_text(&path, &ReadOptions::default()).0, numbered(3, 5));
}

#[test]
fn appends_to_an_existing_log_counting_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_size: Some(1024),
        max_files: 2,
    };
    let path = write_numbered(dir.path(), cfg.clone(), 15);
    assert!(!rotated_path(&path, 1).exists());
    let mut writer = LogWriter::open(&path, cfg).unwrap();
    for i in 15..25 {
        writer
            .write(Stream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert!(rotated_path(&path, 1).exists());
    assert!(fs::metadata(rotated_path(&path, 1)).unwrap().len() <= 1024);
    assert_eq!(read_text(&path, &ReadOptions::default()).0, numbered(0, 25));
}
