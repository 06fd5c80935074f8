//! COPY and ADD: sources from the build context (confined to it: `..` or a symlink leading
//! out is an error naming the source) or from another stage's or image's filesystem; globs;
//! a directory's contents copied into the destination; `--chown` names looked up in the
//! stage's /etc/passwd and /etc/group; `--chmod`; ADD extracting local tars (plain, gzip,
//! zstd). Files reach the stage as a tar stream extracted with the image store's confined
//! extractor into the destination directory, itself resolved inside the stage's root: a
//! symlink in the image can never lead a write outside it.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use barge_engine::archive::view::View;
use barge_image::unpack::{unpack_copy, CopyOptions, Limits};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

use super::error::{BuildError, Result};

/// `(path relative to the context, is a directory)` → excluded by `.dockerignore`.
pub type Ignored<'a> = &'a (dyn Fn(&str, bool) -> bool + Sync);

/// Where COPY reads from.
pub enum SourceRoot<'a> {
    /// The build context: sources are confined to it, `ignored` paths are not there.
    Context { dir: &'a Path, ignored: Ignored<'a> },
    /// Another stage's or an image's root filesystem (mounted): paths resolve inside it.
    Rootfs(&'a Path),
}

/// A source found on the host.
#[derive(Debug)]
pub struct Found {
    /// Its place on the host (symlink-free).
    pub path: PathBuf,
    /// The name it had in the instruction (for messages).
    pub named: String,
    /// Path relative to the source root (for .dockerignore checks below a directory).
    pub rel: String,
}

/// Owner and mode settings for the copied entries.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    /// `--chown` (numeric), or None: root for context files, kept for `--from`.
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    /// SOURCE_DATE_EPOCH: mtimes are clamped to it.
    pub epoch: Option<i64>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path component (`*`, `?`, `[a-z]`, `[!x]`, `\` escapes).
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = name.split_first() else {
                return false;
            };
            let Some(end) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            let (class, after) = (&rest[..end], &rest[end + 1..]);
            let (neg, class) = match class.split_first() {
                Some((b'!' | b'^', r)) => (true, r),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != neg && glob_match(after, tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob_match(&rest[1..], &name[1..])
        }
        Some((&p, rest)) => name.first() == Some(&p) && glob_match(rest, &name[1..]),
    }
}

/// Lexically clean `src` relative to a root: the components, or None when `..` leaves it.
fn clean(src: &str) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Some(out)
}

/// Resolve `comps` in the context `root`, following symlinks but never out of it (the
/// context's own resolver); the source must exist.
fn resolve_in_context(root: &Path, comps: &[OsString], named: &str) -> Result<PathBuf> {
    let src: PathBuf = comps.iter().collect();
    let path = crate::context::resolve_in(root, &src).map_err(|e| match e {
        crate::context::ContextError::Outside { reason, .. } => BuildError::other(format!(
            "{named}: forbidden path outside the build context ({reason})"
        )),
        other => BuildError::other(format!("{named}: {other}")),
    })?;
    if fs::symlink_metadata(&path).is_err() {
        return Err(BuildError::other(format!(
            "{named}: not found in the build context"
        )));
    }
    Ok(path)
}

/// Find the sources named by `patterns` (globs expanded, sorted).
pub fn find(from: &SourceRoot<'_>, patterns: &[String], what: &str) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for pat in patterns {
        let named = format!("{what} {pat}");
        let Some(comps) = clean(pat) else {
            return Err(BuildError::other(format!(
                "{named}: forbidden path outside the build context"
            )));
        };
        // Expand the wildcard components one level at a time (lexically, in the root).
        let mut candidates: Vec<Vec<OsString>> = vec![Vec::new()];
        for c in &comps {
            if !has_glob(&c.to_string_lossy()) {
                for cand in &mut candidates {
                    cand.push(c.clone());
                }
                continue;
            }
            let mut next = Vec::new();
            for cand in &candidates {
                let dir = match from {
                    SourceRoot::Context { dir, .. } => resolve_in_context(dir, cand, &named)?,
                    SourceRoot::Rootfs(root) => in_rootfs(root, cand)?,
                };
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<OsString> = rd.flatten().map(|e| e.file_name()).collect();
                names.sort();
                for n in names {
                    if glob_match(c.as_bytes(), n.as_bytes()) {
                        let mut m = cand.clone();
                        m.push(n);
                        next.push(m);
                    }
                }
            }
            candidates = next;
        }
        let mut matched = 0;
        for cand in candidates {
            let rel = cand
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let path = match from {
                SourceRoot::Context { dir, ignored } => {
                    let p = resolve_in_context(dir, &cand, &named)?;
                    let is_dir = p.is_dir();
                    if !rel.is_empty() && ignored(&rel, is_dir) {
                        continue;
                    }
                    p
                }
                SourceRoot::Rootfs(root) => {
                    let p = in_rootfs(root, &cand)?;
                    if fs::symlink_metadata(&p).is_err() {
                        return Err(BuildError::other(format!("{named}: not found")));
                    }
                    p
                }
            };
            matched += 1;
            out.push(Found {
                path,
                named: named.clone(),
                rel,
            });
        }
        if matched == 0 {
            return Err(BuildError::other(format!(
                "{named}: no source files were found"
            )));
        }
    }
    Ok(out)
}

/// A path of a mounted root filesystem, symlinks resolved inside it.
fn in_rootfs(root: &Path, comps: &[OsString]) -> Result<PathBuf> {
    let view = View::new(root.to_path_buf(), true, Vec::new());
    let path = format!(
        "/{}",
        comps
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    );
    let resolved = view.resolve(&path, true)?;
    Ok(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Write the tar of `sources` as they land in the destination directory: a directory's
/// contents at the top, a file under `leaf` (its own name when None). With `for_hash`,
/// mtimes are zero (the cache key ignores them).
pub fn write_tar<W: Write>(
    w: W,
    sources: &[Found],
    leaf: Option<&str>,
    attrs: Attrs,
    context: Option<Ignored<'_>>,
    for_hash: bool,
) -> Result<W> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    for s in sources {
        let meta =
            fs::metadata(&s.path).map_err(|e| BuildError::other(format!("{}: {e}", s.named)))?;
        if meta.is_dir() {
            add_dir(
                &mut b,
                &s.path,
                Path::new(""),
                &s.rel,
                attrs,
                context,
                for_hash,
            )?;
        } else {
            let name = match leaf {
                Some(l) => PathBuf::from(l),
                None => PathBuf::from(s.path.file_name().unwrap_or_default()),
            };
            add_one(&mut b, &s.path, &name, attrs, for_hash)?;
        }
    }
    b.into_inner()
        .map_err(|e| BuildError::other(format!("write copy stream: {e}")))
}

fn add_dir<W: Write>(
    b: &mut tar::Builder<W>,
    host: &Path,
    name: &Path,
    rel: &str,
    attrs: Attrs,
    context: Option<Ignored<'_>>,
    for_hash: bool,
) -> Result<()> {
    let rd = fs::read_dir(host)
        .map_err(|e| BuildError::other(format!("read {}: {e}", host.display())))?;
    let mut names: Vec<OsString> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        let h = host.join(&n);
        let child_rel = if rel.is_empty() {
            n.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", n.to_string_lossy())
        };
        let meta = fs::symlink_metadata(&h)
            .map_err(|e| BuildError::other(format!("stat {}: {e}", h.display())))?;
        if let Some(ignored) = context {
            if ignored(&child_rel, meta.is_dir()) {
                continue;
            }
        }
        let child = name.join(&n);
        add_one(b, &h, &child, attrs, for_hash)?;
        if meta.is_dir() {
            add_dir(b, &h, &child, &child_rel, attrs, context, for_hash)?;
        }
    }
    Ok(())
}

fn add_one<W: Write>(
    b: &mut tar::Builder<W>,
    host: &Path,
    name: &Path,
    attrs: Attrs,
    for_hash: bool,
) -> Result<()> {
    let meta = fs::symlink_metadata(host)
        .map_err(|e| BuildError::other(format!("stat {}: {e}", host.display())))?;
    let ft = meta.file_type();
    let (uid, gid) = attrs.owner.unwrap_or((meta.uid(), meta.gid()));
    let mode = match attrs.chmod {
        Some(m) if !ft.is_symlink() => m,
        _ => meta.mode() & 0o7777,
    };
    let mtime = if for_hash {
        0
    } else {
        match attrs.epoch {
            Some(e) => meta.mtime().min(e).max(0) as u64,
            None => meta.mtime().max(0) as u64,
        }
    };
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_uid(uid as u64);
    h.set_gid(gid as u64);
    h.set_mtime(mtime);
    h.set_size(0);
    let err = |e: io::Error| BuildError::other(format!("copy {}: {e}", host.display()));
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, name, io::empty()).map_err(err)
    } else if ft.is_symlink() {
        let target = fs::read_link(host).map_err(err)?;
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, name, target).map_err(err)
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        let f = fs::File::open(host).map_err(err)?;
        b.append_data(&mut h, name, f).map_err(err)
    } else {
        // Devices, fifos and sockets of the context are not copied (docker copies devices
        // only from images; a context has none worth copying).
        Ok(())
    }
}

/// Create `path` (absolute, in the stage's root `root`) and its missing parents, symlinks on
/// the way resolved inside the root; the opened directory.
pub fn mkdir_in_root(root: &Path, path: &str) -> Result<std::os::fd::OwnedFd> {
    let view = View::new(root.to_path_buf(), false, Vec::new());
    let comps = view.resolve(path, true)?;
    let mut fd = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| BuildError::other(format!("open {}: {e}", root.display())))?;
    for c in &comps {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        fd = match openat(&fd, c.as_os_str(), flags, Mode::empty()) {
            Ok(f) => f,
            Err(nix::Error::ENOENT) => {
                mkdirat(&fd, c.as_os_str(), Mode::from_bits_truncate(0o755)).map_err(|e| {
                    BuildError::other(format!("mkdir {path} ({}): {e}", c.to_string_lossy()))
                })?;
                openat(&fd, c.as_os_str(), flags, Mode::empty()).map_err(|e| {
                    BuildError::other(format!("open {path} ({}): {e}", c.to_string_lossy()))
                })?
            }
            Err(e) => {
                return Err(BuildError::other(format!(
                    "{path}: {} is not a directory in the image ({e})",
                    c.to_string_lossy()
                )))
            }
        };
    }
    Ok(fd)
}

/// Is `path` (absolute) an existing directory in the stage's root?
pub fn is_dir_in_root(root: &Path, path: &str) -> bool {
    let view = View::new(root.to_path_buf(), false, Vec::new());
    view.resolve(path, true)
        .ok()
        .map(|c| c.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
        .is_some_and(|p| p.is_dir())
}

/// Extract the tar produced by `produce` into the directory `dir`.
pub fn extract_into(
    dir: std::os::fd::OwnedFd,
    produce: impl FnOnce(io::PipeWriter) -> Result<()> + Send,
    what: &str,
) -> Result<()> {
    let (mut reader, writer) = io::pipe().map_err(|e| BuildError::other(format!("pipe: {e}")))?;
    let limits = Limits {
        max_entries: u64::MAX,
        max_bytes: u64::MAX,
    };
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(writer));
        let extracted = unpack_copy(&mut reader, dir, &limits, CopyOptions::default());
        // What follows the end-of-archive blocks is read too: the writer must not see a
        // broken pipe when the extraction is done.
        let _ = io::copy(&mut reader, &mut io::sink());
        drop(reader);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(BuildError::other("the copy stream's writer panicked")));
        produced?;
        extracted.map_err(|e| BuildError::other(format!("{what}: {e}")))?;
        Ok(())
    })
}

/// Is the file at `path` a tar archive (plain, gzip or zstd)? Its decompressed stream if so.
pub fn as_archive(path: &Path) -> Result<Option<Box<dyn Read>>> {
    use barge_image::unpack::{decompress, Compression};
    let err = |e: io::Error| BuildError::other(format!("read {}: {e}", path.display()));
    let mut head = [0u8; 6];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(err)?;
    let head = &head[..n];
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(BuildError::other(format!(
            "ADD {}: bzip2 and xz archives are not supported yet (use gzip or zstd)",
            path.display()
        )));
    }
    let c = Compression::sniff(head);
    let mut probe = decompress(fs::File::open(path).map_err(err)?, c)?;
    let mut block = vec![0u8; 512];
    let mut got = 0;
    while got < 512 {
        match probe.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(_) => return Ok(None),
        }
    }
    if got < 512 || &block[257..262] != b"ustar" {
        return Ok(None);
    }
    Ok(Some(decompress(fs::File::open(path).map_err(err)?, c)?))
}

/// `--chown=user[:group]` to numbers: names looked up in the stage's /etc/passwd and
/// /etc/group (a user alone means its primary group).
pub fn owner(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |file: &str| -> String {
        let view = View::new(root.to_path_buf(), true, Vec::new());
        view.resolve(file, true)
            .ok()
            .map(|c| c.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
            .and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let passwd = read("/etc/passwd");
            let line = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 4 && f[0] == user)
                .ok_or_else(|| {
                    BuildError::other(format!(
                        "--chown={spec}: no user {user:?} in the stage's /etc/passwd"
                    ))
                })?;
            let n = |s: &str| {
                s.parse::<u32>().map_err(|_| {
                    BuildError::other(format!("--chown={spec}: bad /etc/passwd entry for {user}"))
                })
            };
            (n(line[2])?, n(line[3])?)
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read("/etc/group");
                groups
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() >= 3 && f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| {
                        BuildError::other(format!(
                            "--chown={spec}: no group {g:?} in the stage's /etc/group"
                        ))
                    })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.txt", b"a.txt"));
        assert!(!glob_match(b"*.txt", b"a.txt.bak"));
        assert!(glob_match(b"f?le[0-9]", b"file7"));
        assert!(!glob_match(b"[!a]x", b"ax"));
    }

    #[test]
    fn context_confinement() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        fs::create_dir_all(ctx.join("d")).unwrap();
        fs::write(ctx.join("d/f"), "x").unwrap();
        fs::create_dir_all(ctx.join("g")).unwrap();
        fs::write(ctx.join("g/a.txt"), "a").unwrap();
        fs::write(ctx.join("g/b.txt"), "b").unwrap();
        fs::write(ctx.join("g/c.md"), "c").unwrap();
        std::os::unix::fs::symlink("/etc", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", ctx.join("d/up")).unwrap();
        std::os::unix::fs::symlink("d/f", ctx.join("ok")).unwrap();
        let none = |_: &str, _: bool| false;
        let from = SourceRoot::Context {
            dir: &ctx,
            ignored: &none,
        };
        let f = |p: &str| find(&from, &[p.to_string()], "COPY");
        assert!(f("../x")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        assert!(f("abs/passwd")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        assert!(f("d/up/x")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        assert_eq!(f("ok").unwrap()[0].path, ctx.join("d/f"));
        assert_eq!(f("g/*.txt").unwrap().len(), 2);
        // A glob matching an escaping symlink is refused too.
        assert!(f("d/*")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        assert!(f("nothing*")
            .unwrap_err()
            .to_string()
            .contains("no source files"));
    }
}
