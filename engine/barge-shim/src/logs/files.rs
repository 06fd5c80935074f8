//! The set of files a log is kept in: `path` (being written) and the rotated `path.1` (newest)
//! .. `path.N` (oldest). Naming, rotating, listing, and opening a consistent snapshot.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::io_context;

/// Identity of a file that survives renames: (device, inode).
pub(crate) type FileId = (u64, u64);

/// A log file open for reading.
pub(crate) struct LogFile {
    pub file: File,
    pub id: FileId,
    /// The name it had when opened, for error messages.
    pub path: PathBuf,
}

/// How often [`snapshot`] tries to open the files before giving up on a log that rotates faster.
const SNAPSHOT_ATTEMPTS: usize = 50;

/// The identity of the file `meta` describes.
pub(crate) fn file_id(meta: &Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// `path.n`: the name of the `n`th rotated file (1 is the newest).
pub(crate) fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shift the files so that at most `max_files` remain counting a new `path`: `path.{max-2}` →
/// `path.{max-1}` (replacing the oldest) .. `path` → `path.1`. Missing files are skipped. The
/// caller creates the new `path`.
pub(crate) fn rotate(path: &Path, max_files: u32) -> io::Result<()> {
    for n in (1..max_files).rev() {
        let from = match n {
            1 => path.to_path_buf(),
            _ => rotated_path(path, n - 1),
        };
        let to = rotated_path(path, n);
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "rotating log file {} to {}: {e}",
                        from.display(),
                        to.display()
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The files of the log at `path` that exist now, oldest first (`path.N` .. `path.1`, `path`),
/// with their identities. A missing directory is an empty log.
pub(crate) fn list(path: &Path) -> io::Result<Vec<(PathBuf, FileId)>> {
    let base = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("log path {} has no file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(e, "listing log directory", dir)),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_context(e, "listing log directory", dir))?;
        if let Some(n) = rotation_number(base, &entry.file_name()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));

    let names = numbers
        .into_iter()
        .map(|n| rotated_path(path, n))
        .chain([path.to_path_buf()]);
    let mut files = Vec::new();
    for name in names {
        match fs::metadata(&name) {
            Ok(meta) if meta.is_file() => {
                let id = file_id(&meta);
                files.push((name, id));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_context(e, "examining log file", &name)),
        }
    }
    Ok(files)
}

/// `n` if `name` is `base.n` with `n` ≥ 1 written canonically.
fn rotation_number(base: &OsStr, name: &OsStr) -> Option<u32> {
    let suffix = name
        .as_bytes()
        .strip_prefix(base.as_bytes())?
        .strip_prefix(b".")?;
    let suffix = std::str::from_utf8(suffix).ok()?;
    let n: u32 = suffix.parse().ok()?;
    (n >= 1 && n.to_string() == suffix).then_some(n)
}

/// Open `path` for reading if it (still) is the file `id`; `None` if it is gone or another file.
pub(crate) fn open_if(path: &Path, id: FileId) -> io::Result<Option<LogFile>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_context(e, "opening log file", path)),
    };
    let meta = file
        .metadata()
        .map_err(|e| io_context(e, "examining log file", path))?;
    Ok((file_id(&meta) == id).then(|| LogFile {
        file,
        id,
        path: path.to_path_buf(),
    }))
}

/// Open all files of the log at `path`, oldest first, as one consistent set: if the log rotates
/// while they are being opened, try again.
pub(crate) fn snapshot(path: &Path) -> io::Result<Vec<LogFile>> {
    for _ in 0..SNAPSHOT_ATTEMPTS {
        let listing = list(path)?;
        let mut files = Vec::with_capacity(listing.len());
        for (name, id) in &listing {
            match open_if(name, *id)? {
                Some(file) => files.push(file),
                None => break,
            }
        }
        if files.len() == listing.len() && list(path)? == listing {
            return Ok(files);
        }
        thread::sleep(Duration::from_millis(1));
    }
    Err(io::Error::other(format!(
        "the log files at {} kept changing while being opened",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_rotated_names() {
        let base = OsStr::new("c.log");
        assert_eq!(rotation_number(base, OsStr::new("c.log.1")), Some(1));
        assert_eq!(rotation_number(base, OsStr::new("c.log.12")), Some(12));
        for other in [
            "c.log", "c.log.0", "c.log.01", "c.log.+1", "c.log.x", "c.logs.1",
        ] {
            assert_eq!(rotation_number(base, OsStr::new(other)), None, "{other}");
        }
    }

    #[test]
    fn lists_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        for name in ["c.log", "c.log.1", "c.log.10", "c.log.2", "other"] {
            fs::write(dir.path().join(name), name).unwrap();
        }
        let names: Vec<_> = list(&path)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c.log.10", "c.log.2", "c.log.1", "c.log"]);
        assert!(list(&dir.path().join("missing/c.log")).unwrap().is_empty());
    }
}
