//! One pass over an image archive tar: every regular file goes into the content store (or, for
//! the few small metadata files, into memory), and links are remembered. Entry names are only
//! ever looked up, never used as filesystem paths, so hostile names (`../x`, `/etc/x`) can't
//! reach anything.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::rc::Rc;

use crate::content::Ingest;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::store::Store;

/// Files kept in memory instead of the content store.
const METADATA: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];
/// Their size limit.
const MAX_METADATA: u64 = 16 << 20;
/// Bytes of headers (long names, PAX records) allowed in front of one entry.
const HEADER_BUDGET: u64 = 16 << 20;
/// Links followed at most when resolving a name.
const MAX_LINKS: usize = 16;

/// What an archive holds.
#[derive(Default)]
pub(crate) struct Contents {
    /// Regular files (normalised names) and the digest they were stored under.
    files: HashMap<String, Digest>,
    /// Symbolic and hard links: name → the (normalised) name they point at.
    links: HashMap<String, String>,
    /// The metadata files, by name.
    pub metadata: HashMap<String, Vec<u8>>,
}

impl Contents {
    /// The blob stored for `name` (a path inside the archive), following links.
    pub fn blob(&self, name: &str, referenced_by: &str) -> Result<Digest> {
        let mut current = normalize(name, "");
        for _ in 0..=MAX_LINKS {
            if let Some(d) = self.files.get(&current) {
                return Ok(d.clone());
            }
            match self.links.get(&current) {
                Some(next) => current = next.clone(),
                None => {
                    return Err(Error::invalid(
                        format!("image archive: {name:?} (referenced by {referenced_by})"),
                        "no such file in the archive",
                    ))
                }
            }
        }
        Err(Error::invalid(
            format!("image archive: {name:?} (referenced by {referenced_by})"),
            format!("more than {MAX_LINKS} links to follow"),
        ))
    }

    /// The digests of every file stored.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.files.values()
    }

    /// The blob `digest` as the OCI layout stores it (`blobs/sha256/<hex>`).
    pub fn oci_blob(&self, digest: &Digest, referenced_by: &str) -> Result<Digest> {
        self.blob(&oci_path(digest), referenced_by)
    }
}

/// `blobs/sha256/<hex>`.
pub(crate) fn oci_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// A name as an archive lists it, relative to `dir`, made canonical: `./a//b/` → `a/b`,
/// `x/../y` → `y`, never above the top (`../a` → `a`).
pub(crate) fn normalize(name: &str, dir: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let base = if name.starts_with('/') { "" } else { dir };
    for p in base.split('/').chain(name.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Counts what the tar reader takes and refuses to give more than it was allowed: the entry
/// data it announced, and a bounded amount of header bytes in between.
struct Metered<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::other(format!(
                "tar headers longer than {} MiB",
                HEADER_BUDGET >> 20
            )));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

fn tar_error(e: io::Error, last: Option<&str>) -> Error {
    let at = match last {
        Some(l) => format!("after entry {l:?}"),
        None => "at the first entry".into(),
    };
    Error::invalid("image archive tar", format!("{at}: {e}"))
}

/// Read the whole (decompressed) archive: blobs into the store, metadata into memory.
/// `blobs/sha256/<hex>` files must hash to their name.
pub(crate) fn scan(store: &Store, reader: impl Read) -> Result<Contents> {
    let left = Rc::new(Cell::new(HEADER_BUDGET));
    let metered = Metered {
        inner: reader,
        left: left.clone(),
    };
    let mut archive = tar::Archive::new(metered);
    let mut contents = Contents::default();
    let mut last: Option<String> = None;
    for entry in archive.entries().map_err(|e| tar_error(e, None))? {
        let mut entry = entry.map_err(|e| tar_error(e, last.as_deref()))?;
        let size = entry.size();
        left.set(
            size.div_ceil(512)
                .saturating_mul(512)
                .saturating_add(HEADER_BUDGET),
        );
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = normalize(&raw, "");
        last = Some(raw.clone());
        let ty = entry.header().entry_type();
        if ty.is_file() || ty == tar::EntryType::Continuous {
            if METADATA.contains(&name.as_str()) {
                contents
                    .metadata
                    .insert(name, read_metadata(&mut entry, &raw, size)?);
            } else {
                let digest = store_file(store, &mut entry, &name, &raw, size)?;
                contents.files.insert(name.clone(), digest);
                contents.links.remove(&name);
            }
        } else if ty.is_symlink() || ty.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else {
                continue;
            };
            let target = String::from_utf8_lossy(&target).into_owned();
            // A symlink is relative to its directory; a hard link names an archive member.
            let dir = if ty.is_symlink() {
                name.rsplit_once('/').map_or("", |(d, _)| d)
            } else {
                ""
            };
            let target = normalize(&target, dir);
            contents.files.remove(&name);
            contents.links.insert(name, target);
        }
        // Directories and anything else (devices, fifos) carry nothing an image needs.
    }
    // Read to the end, so that a caller streaming from a pipe sees it fully consumed.
    left.set(u64::MAX);
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| tar_error(e, last.as_deref()))?;
    Ok(contents)
}

fn read_metadata(entry: &mut impl Read, raw: &str, size: u64) -> Result<Vec<u8>> {
    if size > MAX_METADATA {
        return Err(Error::invalid(
            format!("image archive: {raw:?}"),
            format!(
                "{size} bytes, more than the {} MiB a metadata file may have",
                MAX_METADATA >> 20
            ),
        ));
    }
    let mut data = Vec::new();
    entry
        .take(MAX_METADATA)
        .read_to_end(&mut data)
        .map_err(|e| {
            Error::invalid(
                format!("image archive: {raw:?}"),
                format!("reading it: {e}"),
            )
        })?;
    Ok(data)
}

/// Store one file. Under `blobs/sha256/<hex>` its content must have that digest.
fn store_file(
    store: &Store,
    entry: &mut impl Read,
    name: &str,
    raw: &str,
    size: u64,
) -> Result<Digest> {
    let named = name
        .strip_prefix("blobs/sha256/")
        .filter(|hex| !hex.contains('/'))
        .map(|hex| {
            Digest::from_hex(hex).map_err(|_| {
                Error::invalid(
                    format!("image archive: {raw:?}"),
                    "not a sha256 digest under blobs/sha256/",
                )
            })
        })
        .transpose()?;
    let mismatch = |expected: &Digest, actual: &Digest| Error::DigestMismatch {
        what: format!("image archive: {raw:?}"),
        expected: expected.to_string(),
        actual: actual.to_string(),
    };
    match named {
        Some(expected) if store.content.exists(&expected) => {
            // Stored already: check the archive's copy all the same, keep the one we have.
            let mut hasher = Hasher::new();
            copy(entry, raw, |data| {
                hasher.update(data);
                Ok(())
            })?;
            let actual = hasher.finish();
            if actual != expected {
                return Err(mismatch(&expected, &actual));
            }
            Ok(expected)
        }
        Some(expected) => {
            let mut ingest = store.content.ingest(&expected, Some(size))?;
            if ingest.offset() != 0 {
                ingest.restart()?;
            }
            if let Err(e) = write_into(&mut ingest, entry, raw) {
                ingest.abort();
                return Err(e);
            }
            ingest.commit().map_err(|e| match e {
                Error::DigestMismatch {
                    expected, actual, ..
                } => Error::DigestMismatch {
                    what: format!("image archive: {raw:?}"),
                    expected,
                    actual,
                },
                e => e,
            })
        }
        None => {
            let mut ingest = store.content.ingest_unknown()?;
            match write_into(&mut ingest, entry, raw) {
                Ok(()) => ingest.commit(),
                Err(e) => {
                    ingest.abort();
                    Err(e)
                }
            }
        }
    }
}

fn write_into(ingest: &mut Ingest, entry: &mut impl Read, raw: &str) -> Result<()> {
    copy(entry, raw, |data| ingest.write_all(data))
}

fn copy(entry: &mut impl Read, raw: &str, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::invalid(
                    format!("image archive: {raw:?}"),
                    format!("reading it: {e}"),
                ))
            }
        };
        sink(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("./manifest.json", ""), "manifest.json");
        assert_eq!(normalize("a//b/", ""), "a/b");
        assert_eq!(normalize("../x.tar", "abc"), "x.tar");
        assert_eq!(normalize("../../../etc/passwd", "abc"), "etc/passwd");
        assert_eq!(normalize("/abs/y", "abc"), "abs/y");
    }
}
