//! The build context: the files a build may `COPY`/`ADD`, from a directory or from a tar read
//! on stdin (`barge build -`, the API's `/build` upload).
//!
//! - A directory is used in place; `.dockerignore` at its root hides paths from [`walk`]
//!   and [`hash_paths`].
//! - A tar is unpacked into a private temporary directory (removed on drop), refusing any
//!   entry that could write outside it: `..` or absolute names, symlinks or hard links whose
//!   target leaves the root, entries that go through a symlink, device nodes and FIFOs; the
//!   entry count and total size are bounded. Errors name the entry.
//! - [`resolve`] maps a `COPY` source to a path inside the root, following symlinks only
//!   while they stay inside; `..` above the root or a symlink leading out is an error naming
//!   the source.
//! - [`hash_paths`] is the cache key's content hash: sha256 over each path's relative name,
//!   mode, uid/gid, link target and file content (mtimes ignored).
//!
//! [`walk`]: BuildContext::walk
//! [`hash_paths`]: BuildContext::hash_paths
//! [`resolve`]: BuildContext::resolve

use crate::dockerignore::{Matcher, PatternError};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a context cannot be used, or a source cannot be taken from it.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Ignore(#[from] PatternError),
    /// A `COPY`/`ADD` source that leaves the context (`..`, absolute, or through a symlink).
    #[error("source {source_path:?} is outside the build context: {reason}")]
    Outside { source_path: String, reason: String },
    /// A tar entry refused while unpacking a context.
    #[error("context tar entry {entry:?} refused: {reason}")]
    HostileEntry { entry: String, reason: String },
    #[error("context tar: {0}")]
    Tar(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContextError + 'a {
    move |source| ContextError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Bounds for unpacking a context tar.
#[derive(Debug, Clone)]
pub struct TarLimits {
    pub max_entries: u64,
    pub max_total_bytes: u64,
    /// Where the private temp dir is made (the system temp dir when `None`).
    pub temp_parent: Option<PathBuf>,
}

impl Default for TarLimits {
    fn default() -> TarLimits {
        TarLimits {
            max_entries: 1_000_000,
            max_total_bytes: 8 << 30,
            temp_parent: None,
        }
    }
}

/// What a context path is (symlinks are never followed by the walker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One path of the context, relative to its root (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub rel: String,
    pub kind: EntryKind,
}

/// A build context rooted at a directory.
#[derive(Debug)]
pub struct BuildContext {
    root: PathBuf,
    matcher: Matcher,
    _temp: Option<tempfile::TempDir>,
}

fn load_ignore(root: &Path) -> Result<Matcher, ContextError> {
    let p = root.join(".dockerignore");
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => {
            let text = fs::read_to_string(&p).map_err(io_err("reading", &p))?;
            Ok(Matcher::parse(&text)?)
        }
        _ => Ok(Matcher::default()),
    }
}

impl BuildContext {
    /// A context from a directory (used in place).
    pub fn from_dir(dir: &Path) -> Result<BuildContext, ContextError> {
        let root = fs::canonicalize(dir).map_err(io_err("opening build context", dir))?;
        if !root.is_dir() {
            return Err(ContextError::Io {
                what: "opening build context",
                path: root,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let matcher = load_ignore(&root)?;
        Ok(BuildContext {
            root,
            matcher,
            _temp: None,
        })
    }

    /// A context from a tar stream (plain, gzip or zstd: the first bytes tell), unpacked
    /// safely into a private temp dir.
    pub fn from_tar<R: Read>(reader: R, limits: &TarLimits) -> Result<BuildContext, ContextError> {
        use barge_image::unpack::{decompress, Compression};
        use std::io::BufRead;
        let mut reader = io::BufReader::new(reader);
        let head = reader
            .fill_buf()
            .map_err(|e| ContextError::Tar(format!("reading: {e}")))?;
        let compression = Compression::sniff(head);
        let reader =
            decompress(reader, compression).map_err(|e| ContextError::Tar(e.to_string()))?;
        let parent = limits
            .temp_parent
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let temp = tempfile::Builder::new()
            .prefix("barge-context-")
            .tempdir_in(&parent)
            .map_err(io_err("creating a temp dir in", &parent))?;
        let root = fs::canonicalize(temp.path()).map_err(io_err("opening", temp.path()))?;
        unpack(reader, &root, limits)?;
        let matcher = load_ignore(&root)?;
        Ok(BuildContext {
            root,
            matcher,
            _temp: Some(temp),
        })
    }

    /// The context's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Replaces the rules read from the root's `.dockerignore` (for a Dockerfile-specific
    /// `<name>.dockerignore`, which Docker prefers when it exists).
    pub fn with_matcher(mut self, matcher: Matcher) -> BuildContext {
        self.matcher = matcher;
        self
    }

    /// The `.dockerignore` rules (empty when there is none).
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The path inside the root a `COPY` source names (it need not exist). An absolute source
    /// is relative to the root, as in Docker; `..` above the root or a symlink that leads out
    /// of it is an error naming the source.
    pub fn resolve(&self, src: &str) -> Result<PathBuf, ContextError> {
        resolve_in(&self.root, Path::new(src))
    }
}

/// [`BuildContext::resolve`] for any context directory `root` (canonical: symlinks to
/// absolute paths are inside only when they start with it). The builder's `COPY` uses it.
pub fn resolve_in(root: &Path, src: &Path) -> Result<PathBuf, ContextError> {
    Resolver { root }.resolve(src)
}

/// Resolves paths inside one root.
struct Resolver<'a> {
    root: &'a Path,
}

impl Resolver<'_> {
    fn resolve(&self, src: &Path) -> Result<PathBuf, ContextError> {
        let outside = |reason: String| ContextError::Outside {
            source_path: src.to_string_lossy().into_owned(),
            reason,
        };
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for c in src.components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.as_bytes().to_vec()),
                Component::ParentDir => pending.push(b"..".to_vec()),
                _ => {}
            }
        }
        let mut stack: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        let mut missing = false;
        while let Some(part) = pending.pop() {
            if part == b".." {
                if stack.pop().is_none() {
                    return Err(outside("`..` goes above the context root".into()));
                }
                continue;
            }
            stack.push(part);
            if missing {
                continue;
            }
            let cur = self.join(&stack);
            let meta = match fs::symlink_metadata(&cur) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing = true;
                    continue;
                }
                Err(e) => return Err(io_err("inspecting", &cur)(e)),
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > 40 {
                return Err(outside("too many levels of symbolic links".into()));
            }
            let target = fs::read_link(&cur).map_err(io_err("reading link", &cur))?;
            stack.pop();
            if target.is_absolute() {
                let Ok(inside) = target.strip_prefix(self.root) else {
                    return Err(outside(format!(
                        "{} is a symlink to {}",
                        self.rel(&cur),
                        target.display()
                    )));
                };
                stack.clear();
                push_components(&mut pending, inside);
            } else {
                // Resolve `..` in the target against where the link sits.
                let mut depth = stack.len();
                let escapes = target.components().any(|c| match c {
                    Component::ParentDir if depth == 0 => true,
                    Component::ParentDir => {
                        depth -= 1;
                        false
                    }
                    Component::Normal(_) => {
                        depth += 1;
                        false
                    }
                    _ => false,
                });
                if escapes {
                    return Err(outside(format!(
                        "{} is a symlink to {} (out of the context)",
                        self.rel(&cur),
                        target.display()
                    )));
                }
                push_components(&mut pending, &target);
            }
        }
        Ok(self.join(&stack))
    }

    fn join(&self, parts: &[Vec<u8>]) -> PathBuf {
        let mut p = self.root.to_path_buf();
        for part in parts {
            p.push(OsStr::from_bytes(part));
        }
        p
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(self.root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }
}

impl BuildContext {
    /// Every path of the context not excluded by `.dockerignore`, sorted, symlinks not
    /// followed.
    pub fn walk(&self) -> Result<Vec<ContextEntry>, ContextError> {
        let mut out = Vec::new();
        self.walk_dir("", &mut out)?;
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Like [`walk`](Self::walk), below `rel_dir` only (that dir itself not included).
    pub fn walk_under(&self, rel_dir: &str) -> Result<Vec<ContextEntry>, ContextError> {
        let mut out = Vec::new();
        self.walk_dir(rel_dir.trim_matches('/'), &mut out)?;
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    fn walk_dir(&self, rel: &str, out: &mut Vec<ContextEntry>) -> Result<(), ContextError> {
        let dir = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let rd = fs::read_dir(&dir).map_err(io_err("listing", &dir))?;
        for ent in rd {
            let ent = ent.map_err(io_err("listing", &dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = ent.file_type().map_err(io_err("inspecting", &ent.path()))?;
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let excluded = self.matcher.is_excluded(&child, kind == EntryKind::Dir);
            if !excluded {
                out.push(ContextEntry {
                    rel: child.clone(),
                    kind,
                });
            }
            if kind == EntryKind::Dir
                && (!excluded || self.matcher.excluded_dir_may_contain_exceptions(&child))
            {
                self.walk_dir(&child, out)?;
            }
        }
        Ok(())
    }

    /// The content hash of some context sources (as `COPY` names them; directories
    /// recursively, `.dockerignore` applied): `sha256:<hex>`.
    pub fn hash_paths(&self, sources: &[&str]) -> Result<String, ContextError> {
        let mut rels: Vec<String> = Vec::new();
        for src in sources {
            let path = self.resolve(src)?;
            let rel = Resolver { root: &self.root }.rel(&path);
            let meta = fs::symlink_metadata(&path).map_err(io_err("inspecting", &path))?;
            rels.push(rel.clone());
            if meta.is_dir() {
                rels.extend(self.walk_under(&rel)?.into_iter().map(|e| e.rel));
            }
        }
        rels.sort();
        rels.dedup();
        let mut h = Sha256::new();
        for rel in &rels {
            let path = if rel.is_empty() {
                self.root.clone()
            } else {
                self.root.join(rel)
            };
            let meta = fs::symlink_metadata(&path).map_err(io_err("inspecting", &path))?;
            h.update(rel.as_bytes());
            h.update(b"\0");
            h.update(format!("{:o}\0{}\0{}\0", meta.mode(), meta.uid(), meta.gid()).as_bytes());
            if meta.file_type().is_symlink() {
                let t = fs::read_link(&path).map_err(io_err("reading link", &path))?;
                h.update(t.as_os_str().as_bytes());
            }
            h.update(b"\0");
            if meta.is_file() {
                let mut f = fs::File::open(&path).map_err(io_err("reading", &path))?;
                h.update(meta.len().to_string().as_bytes());
                h.update(b"\0");
                io::copy(&mut f, &mut HashWriter(&mut h)).map_err(io_err("reading", &path))?;
            }
        }
        Ok(format!("sha256:{}", hex::encode(h.finalize())))
    }
}

fn push_components(pending: &mut Vec<Vec<u8>>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => pending.push(n.as_bytes().to_vec()),
            Component::ParentDir => pending.push(b"..".to_vec()),
            _ => {}
        }
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An entry name's normal components, or why it is refused.
fn entry_parts(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if raw.starts_with(b"/") {
        return Err("absolute path".into());
    }
    let mut parts = Vec::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => parts.push(n.as_bytes().to_vec()),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` in the path".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    Ok(parts)
}

/// Creates (as needed) the directories `parts` names under `root`, refusing symlinks and
/// non-directories on the way.
fn safe_dirs(root: &Path, parts: &[Vec<u8>]) -> Result<PathBuf, String> {
    let mut cur = root.to_path_buf();
    for p in parts {
        cur.push(OsStr::from_bytes(p));
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("its path goes through a symlink".into())
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err("its parent is not a directory".into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|e| format!("creating {}: {e}", cur.display()))?;
            }
            Err(e) => return Err(format!("inspecting {}: {e}", cur.display())),
        }
    }
    Ok(cur)
}

/// Removes whatever non-directory sits at `path` (later entries replace earlier ones).
fn clear(path: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err("a directory is already there".into()),
        Ok(_) => fs::remove_file(path).map_err(|e| format!("replacing: {e}")),
        Err(_) => Ok(()),
    }
}

fn unpack<R: Read>(reader: R, root: &Path, limits: &TarLimits) -> Result<(), ContextError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| ContextError::Tar(e.to_string()))?;
    let mut count = 0u64;
    let mut total = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| ContextError::Tar(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let hostile = |reason: String| ContextError::HostileEntry {
            entry: name.clone(),
            reason,
        };
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(hostile(format!(
                "more than {} entries in the context",
                limits.max_entries
            )));
        }
        let parts = entry_parts(&raw).map_err(hostile)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let Some((last, dirs)) = parts.split_last() else {
            continue; // `./`: the root itself
        };
        if kind == tar::EntryType::Directory {
            let dir = safe_dirs(root, &parts).map_err(hostile)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700))
                .map_err(io_err("setting mode of", &dir))?;
            continue;
        }
        let parent = safe_dirs(root, dirs).map_err(hostile)?;
        let path = parent.join(OsStr::from_bytes(last));
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&path).map_err(hostile)?;
                let size = entry.header().size().unwrap_or(0);
                if total.saturating_add(size) > limits.max_total_bytes {
                    return Err(hostile(format!(
                        "the context exceeds {} bytes",
                        limits.max_total_bytes
                    )));
                }
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_err("creating", &path))?;
                let room = limits.max_total_bytes - total;
                let n = io::copy(&mut (&mut entry).take(room.saturating_add(1)), &mut f)
                    .map_err(|e| hostile(format!("reading its data: {e}")))?;
                if n > room {
                    return Err(hostile(format!(
                        "the context exceeds {} bytes",
                        limits.max_total_bytes
                    )));
                }
                total += n;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(io_err("setting mode of", &path))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile("symlink without a target".into()))?
                    .into_owned();
                if target.starts_with(b"/") {
                    return Err(hostile(format!(
                        "symlink to the absolute path {}",
                        String::from_utf8_lossy(&target)
                    )));
                }
                let mut depth = dirs.len();
                for c in Path::new(OsStr::from_bytes(&target)).components() {
                    match c {
                        Component::ParentDir => {
                            if depth == 0 {
                                return Err(hostile(format!(
                                    "symlink to {} leaves the context",
                                    String::from_utf8_lossy(&target)
                                )));
                            }
                            depth -= 1;
                        }
                        Component::Normal(_) => depth += 1,
                        _ => {}
                    }
                }
                clear(&path).map_err(hostile)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(io_err("creating symlink", &path))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile("hard link without a target".into()))?
                    .into_owned();
                let tparts =
                    entry_parts(&target).map_err(|r| hostile(format!("hard link target: {r}")))?;
                let Some((tlast, tdirs)) = tparts.split_last() else {
                    return Err(hostile("hard link to the root".into()));
                };
                let tparent = safe_dirs(root, tdirs)
                    .map_err(|r| hostile(format!("hard link target: {r}")))?;
                let tpath = tparent.join(OsStr::from_bytes(tlast));
                match fs::symlink_metadata(&tpath) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(hostile(format!(
                            "hard link to {}, which is not a file unpacked before it",
                            String::from_utf8_lossy(&target)
                        )))
                    }
                }
                clear(&path).map_err(hostile)?;
                fs::hard_link(&tpath, &path).map_err(io_err("creating hard link", &path))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(hostile("device node".into()))
            }
            tar::EntryType::Fifo => return Err(hostile("FIFO".into())),
            other => return Err(hostile(format!("unsupported entry type {other:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
