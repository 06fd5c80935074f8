//! Atomic file replacement: the data goes to a temp file in the target's directory, which is
//! renamed over the target, so a reader sees the old or the new content and never a mix;
//! [`Durability::Durable`] also fsyncs the file before the rename and the directory after it,
//! so the new content survives a power cut.
//!
//! Every error names the operation and the path it failed on (`create /x/.f.12.0.tmp: …`) and
//! keeps the `io::ErrorKind` of the system error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How hard a write works to keep the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Readers see the old or the new content, never a mix (temp file + rename).
    Atomic,
    /// Also survives a power cut (fsync of the file and of its directory).
    Durable,
}

/// An io error that says what failed and on what (`create /x/.f.1.0.tmp: …`), keeping the
/// system error's kind; its errno stays reachable through [`os_error`].
pub fn io_error(op: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        Context {
            msg: format!("{op} {}", path.display()),
            source: e,
        },
    )
}

/// The errno behind an error made here (or any io error), if it came from a system call.
pub fn os_error(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Context>())
            .and_then(|c| os_error(&c.source))
    })
}

/// What failed and on what, around the system's error.
#[derive(Debug)]
struct Context {
    msg: String,
    source: io::Error,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.msg, self.source)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Write `data` to `path` atomically with permission bits `mode` (exactly, whatever the umask).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, durability: Durability) -> io::Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(data)
        .map_err(|e| io_error("write", f.temp_path(), e))?;
    f.commit(durability)
}

/// fsync a directory, so that a rename or a new entry in it survives a power cut. The error
/// is the system's as it is: the caller says what it was committing.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// A file being written under a temp name next to its target; [`AtomicFile::commit`] renames
/// it into place. Dropped without a commit, the temp file is removed and the target is left
/// as it was.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Create the temp file (`.<name>.<pid>.<n>.tmp` in the target's directory, unique per
    /// process and call, so concurrent writers never share one) with permission bits `mode`.
    pub fn create(path: &Path, mode: u32) -> io::Result<AtomicFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = parent(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("write {}: the path names no file", path.display()),
                )
            })?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            // A crashed writer with the same pid may have left one: start it afresh.
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io_error("create", &tmp, e))?;
        let mut out = AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        };
        // The umask may have taken bits away: set exactly what was asked.
        out.file_mut()?
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_error("chmod", &out.tmp, e))?;
        Ok(out)
    }

    /// Where the data goes until the commit.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_mut(&mut self) -> io::Result<&mut File> {
        self.file.as_mut().ok_or_else(|| {
            io::Error::other(format!("write {}: already committed", self.tmp.display()))
        })
    }

    /// Move the written data into place (fsyncing file and directory when `durability` asks).
    pub fn commit(mut self, durability: Durability) -> io::Result<()> {
        let file = self.file.take().ok_or_else(|| {
            io::Error::other(format!("commit {}: already committed", self.tmp.display()))
        })?;
        let result = (|| {
            if durability == Durability::Durable {
                file.sync_all()
                    .map_err(|e| io_error("fsync", &self.tmp, e))?;
            }
            drop(file);
            fs::rename(&self.tmp, &self.path).map_err(|e| {
                io_error(&format!("rename {} to", self.tmp.display()), &self.path, e)
            })?;
            if durability == Durability::Durable {
                let dir = parent(&self.path);
                sync_dir(dir).map_err(|e| io_error("fsync directory", dir, e))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        // Renamed or removed: nothing left for Drop.
        self.tmp = PathBuf::new();
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file_mut()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file_mut()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("barge-util-fs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let d = tempdir("replace");
        let p = d.join("f.json");
        write_atomic(&p, b"one", 0o600, Durability::Durable).unwrap();
        write_atomic(&p, b"two", 0o644, Durability::Atomic).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "temp file left");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mode_is_exact_whatever_the_umask() {
        let d = tempdir("mode");
        let p = d.join("f");
        write_atomic(&p, b"x", 0o640, Durability::Durable).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        write_atomic(&p, b"x", 0o606, Durability::Atomic).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o606);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_alone() {
        let d = tempdir("drop");
        let p = d.join("f");
        fs::write(&p, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&p, 0o600).unwrap();
            f.write_all(b"half").unwrap();
            assert!(f.temp_path().exists());
        }
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "temp file left");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn errors_name_the_operation_and_path() {
        let p = Path::new("/nonexistent-barge-dir/f");
        let e = write_atomic(p, b"x", 0o600, Durability::Durable).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(os_error(&e), Some(2), "ENOENT kept");
        assert!(std::error::Error::source(&e).is_some() || e.get_ref().is_some());
        let msg = e.to_string();
        assert!(
            msg.starts_with("create /nonexistent-barge-dir/.f."),
            "{msg}"
        );
    }

    #[test]
    fn concurrent_writers_of_one_file_never_collide() {
        let d = tempdir("concurrent");
        let p = d.join("f");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_atomic(&p, format!("{i}").as_bytes(), 0o600, Durability::Atomic)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = fs::read_to_string(&p).unwrap();
        assert!(s.parse::<u32>().unwrap() < 8);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "temp file left");
        fs::remove_dir_all(&d).unwrap();
    }
}
