//! The content store: blobs named by their sha256, verified before they become visible.
//!
//! Layout under the store root:
//! - `blobs/sha256/<hex>`: committed blobs, never modified in place;
//! - `ingest/<hex>.partial`: a download in progress, kept across crashes so that it resumes
//!   (HTTP Range) where it stopped. An exclusive `flock` on the partial file makes concurrent
//!   pulls of the same blob wait for each other instead of interleaving.
//!
//! A blob is written to its partial file, fsynced, checked against its digest and size, and
//! then renamed into place (and the directory fsynced), so a power cut leaves either the whole
//! verified blob or a resumable partial, never a torn blob under a valid name.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};

pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Open (creating if needed, mode 0700) the store under `root`.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let blobs = root.join("blobs/sha256");
        let ingest = root.join("ingest");
        for dir in [&blobs, &ingest] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .ctx("create directory", dir)?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                what: "blob",
                name: digest.to_string(),
            }),
            Err(e) => Err(Error::io("stat blob", path, e)),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                what: "blob",
                name: digest.to_string(),
            },
            _ => Error::io("open blob", path, e),
        })
    }

    /// Read a (small) blob whole, checking its digest again: manifests and configs are parsed
    /// from what this returns.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .ctx("read blob", self.path(digest))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", self.path(digest).display()),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    /// Store `data`; when `expected` is given it must match.
    pub fn write(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = Digest::of(data);
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut ingest = self.ingest(&digest, Some(data.len() as u64))?;
        if ingest.offset() != 0 {
            ingest.restart()?;
        }
        ingest.write_all(data)?;
        ingest.commit()
    }

    /// Start or resume writing the blob `expected`. The returned writer is positioned after the
    /// bytes a previous, interrupted attempt left (see [`Ingest::offset`]).
    pub fn ingest(&self, expected: &Digest, size: Option<u64>) -> Result<Ingest> {
        let path = self.ingest.join(format!("{}.partial", expected.hex()));
        Ingest::open(path, self.blobs.clone(), Some(expected.clone()), size)
    }

    /// Write a blob whose digest is only known at the end (archives being loaded).
    pub fn ingest_unknown(&self) -> Result<Ingest> {
        let name = format!("unknown-{}-{}.partial", std::process::id(), unique());
        Ingest::open(self.ingest.join(name), self.blobs.clone(), None, None)
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", path, e)),
        }
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).ctx("list blobs", &self.blobs)? {
            let entry = entry.ctx("list blobs", &self.blobs)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove the partial download of `digest` unless someone is writing it. Whether it was
    /// removed.
    pub fn discard_partial(&self, digest: &Digest) -> Result<bool> {
        let path = self.ingest.join(format!("{}.partial", digest.hex()));
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("open partial blob", path, e)),
        };
        if file.try_lock().is_err() {
            return Ok(false);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove partial blob", path, e)),
        }
    }

    /// Remove partial downloads nobody holds (their writer died) and that are older than
    /// `max_age`; younger ones are kept so that an interrupted pull can resume.
    pub fn prune_ingests(&self, max_age: std::time::Duration) -> Result<u64> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.ingest).ctx("list ingests", &self.ingest)? {
            let entry = entry.ctx("list ingests", &self.ingest)?;
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // being written right now
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= max_age);
            let unknown = entry.file_name().to_string_lossy().starts_with("unknown-");
            if old || unknown {
                fs::remove_file(&path).ctx("remove partial blob", &path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 32)
}

/// A blob being written. Dropping it without [`Ingest::commit`] keeps the partial file (it can
/// resume); [`Ingest::abort`] removes it.
pub struct Ingest {
    file: File,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Hasher,
    written: u64,
    expected: Option<Digest>,
    size: Option<u64>,
}

impl Ingest {
    fn open(
        path: PathBuf,
        blobs: PathBuf,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<Ingest> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .ctx("open partial blob", &path)?;
        file.lock().ctx("lock partial blob", &path)?;
        // Hash what an earlier attempt left, so the final digest covers the whole blob.
        let mut hasher = Hasher::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).ctx("read partial blob", &path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        let mut ingest = Ingest {
            file,
            path,
            blobs,
            hasher,
            written,
            expected,
            size,
        };
        if size.is_some_and(|s| written > s) {
            ingest.restart()?;
        }
        Ok(ingest)
    }

    /// Bytes already present (where a resumed download starts).
    pub fn offset(&self) -> u64 {
        self.written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader over the bytes already present, from the start (to feed the unpacker again).
    pub fn existing(&self) -> Result<impl Read> {
        let f = File::open(&self.path).ctx("open partial blob", &self.path)?;
        Ok(f.take(self.written))
    }

    /// Drop what is there and start from zero (the server ignored the Range request).
    pub fn restart(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .ctx("truncate partial blob", &self.path)?;
        self.file
            .seek(SeekFrom::Start(0))
            .ctx("seek partial blob", &self.path)?;
        self.hasher = Hasher::new();
        self.written = 0;
        Ok(())
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        if let Some(size) = self.size {
            if self.written + data.len() as u64 > size {
                return Err(Error::invalid(
                    format!("blob {}", self.name()),
                    format!("more data than the {size} bytes announced"),
                ));
            }
        }
        self.file
            .seek(SeekFrom::End(0))
            .ctx("seek partial blob", &self.path)?;
        self.file
            .write_all(data)
            .ctx("write partial blob", &self.path)?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    fn name(&self) -> String {
        match &self.expected {
            Some(d) => d.to_string(),
            None => self.path.display().to_string(),
        }
    }

    /// Verify size and digest, fsync, and move the blob into place. On a mismatch the partial
    /// file is removed (its bytes are wrong, resuming it would never succeed).
    pub fn commit(self) -> Result<Digest> {
        if let Some(size) = self.size.filter(|s| self.written < *s) {
            // Incomplete: keep the bytes, a later attempt continues from them.
            return Err(Error::invalid(
                format!("blob {}", self.name()),
                format!("incomplete: {} of {size} bytes", self.written),
            ));
        }
        let digest = self.hasher.clone().finish();
        let mismatch = match (&self.expected, self.size) {
            (Some(expected), _) if expected != &digest => Some(Error::DigestMismatch {
                what: format!("blob {expected}"),
                expected: expected.to_string(),
                actual: digest.to_string(),
            }),
            (_, Some(size)) if size != self.written => Some(Error::invalid(
                format!("blob {}", self.name()),
                format!("got {} bytes, expected {size}", self.written),
            )),
            _ => None,
        };
        if let Some(err) = mismatch {
            let _ = fs::remove_file(&self.path);
            return Err(err);
        }
        self.file.sync_all().ctx("fsync partial blob", &self.path)?;
        let target = self.blobs.join(digest.hex());
        fs::rename(&self.path, &target).ctx("commit blob", &target)?;
        barge_util::fs::sync_dir(&self.blobs).ctx("fsync blob directory", &self.blobs)?;
        Ok(digest)
    }

    pub fn abort(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_verify_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let d = store.write(b"hello", None).unwrap();
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.size(&d).unwrap(), 5);
        // A wrong expected digest is refused and nothing is stored.
        let other = Digest::of(b"other");
        assert!(matches!(
            store.write(b"hello!", Some(&other)),
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(store.list().unwrap(), vec![d.clone()]);

        // Resume: half written, dropped, reopened at the offset, finished.
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let want = Digest::of(&data);
        let mut w = store.ingest(&want, Some(data.len() as u64)).unwrap();
        w.write_all(&data[..40_000]).unwrap();
        drop(w);
        let mut w = store.ingest(&want, Some(data.len() as u64)).unwrap();
        assert_eq!(w.offset(), 40_000);
        let mut again = Vec::new();
        w.existing().unwrap().read_to_end(&mut again).unwrap();
        assert_eq!(again, &data[..40_000]);
        w.write_all(&data[40_000..]).unwrap();
        assert_eq!(w.commit().unwrap(), want);
        assert_eq!(store.read(&want).unwrap(), data);
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);

        // Corrupt bytes: commit fails and the partial is gone.
        let mut w = store.ingest(&Digest::of(b"abc"), Some(3)).unwrap();
        w.write_all(b"abd").unwrap();
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        assert!(!store.exists(&Digest::of(b"abc")));
        assert!(!store.exists(&Digest::of(b"abd")));
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
        // More than announced is refused.
        let mut w = store.ingest(&Digest::of(b"abc"), Some(2)).unwrap();
        assert!(w.write_all(b"abc").is_err());
    }
}
