//! Safe in-root path walking.
//!
//! Entry names are normalised lexically into components, then every directory on the way is
//! opened with `openat(O_NOFOLLOW|O_DIRECTORY)` relative to the one before, starting from an fd
//! of the layer directory. The kernel never resolves more than one component at a time and
//! never follows a symlink, so neither `..` nor a symlink (from the archive or planted by an
//! earlier entry) can lead outside the layer. Plain `openat`, so any kernel will do.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};

/// An entry path relative to the layer root; empty for the root itself.
pub(crate) type Comps = Vec<OsString>;

/// Normalise an archive path: leading `/` and `./` and every `.` component dropped (absolute
/// names land inside the layer, as with docker and containerd), `..` resolved lexically against
/// the components before it. A `..` that would climb above the layer root is refused.
pub(crate) fn normalize(raw: &[u8]) -> Result<Comps, &'static str> {
    if raw.is_empty() {
        return Err("empty name");
    }
    if raw.contains(&0) {
        return Err("name contains a NUL byte");
    }
    let mut comps = Comps::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if comps.pop().is_none() {
                    return Err("escapes the layer directory");
                }
            }
            c => comps.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(comps)
}

/// `a/b/c`, for messages (`.` for the root).
pub(crate) fn display(comps: &[OsString]) -> String {
    if comps.is_empty() {
        return ".".into();
    }
    let parts: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    parts.join("/")
}

/// What to do about a directory on the way that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Create it, mode 0755, owned by us.
    Create,
    /// Fail with [`WalkError::Missing`].
    Fail,
}

/// Why a walk stopped; each names the path (from the layer root) where it did.
#[derive(Debug)]
pub(crate) enum WalkError {
    Missing(String),
    Symlink(String),
    NotDir(String),
    Io {
        op: &'static str,
        at: String,
        err: io::Error,
    },
}

/// Open directory `name` in `dir` without following a symlink.
pub(crate) fn open_subdir<P: ?Sized + nix::NixPath>(
    dir: &OwnedFd,
    name: &P,
) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Open the directory at `comps` (the root itself when empty), one component at a time.
pub(crate) fn open_dir(
    root: &OwnedFd,
    comps: &[OsString],
    missing: Missing,
) -> Result<OwnedFd, WalkError> {
    let mut cur = root.try_clone().map_err(|err| WalkError::Io {
        op: "duplicate layer directory fd",
        at: ".".into(),
        err,
    })?;
    for (i, c) in comps.iter().enumerate() {
        let here = || display(&comps[..=i]);
        cur = match step(&cur, c, missing) {
            Ok(fd) => fd,
            Err(Stop::Missing) => return Err(WalkError::Missing(here())),
            Err(Stop::Symlink) => return Err(WalkError::Symlink(here())),
            Err(Stop::NotDir) => return Err(WalkError::NotDir(here())),
            Err(Stop::Io(op, e)) => {
                return Err(WalkError::Io {
                    op,
                    at: here(),
                    err: e.into(),
                })
            }
        };
    }
    Ok(cur)
}

enum Stop {
    Missing,
    Symlink,
    NotDir,
    Io(&'static str, Errno),
}

fn step(dir: &OwnedFd, name: &OsStr, missing: Missing) -> Result<OwnedFd, Stop> {
    match open_subdir(dir, name) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) if missing == Missing::Create => {
            match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {
                    let fd = open_subdir(dir, name).map_err(|e| classify(dir, name, e))?;
                    // Exactly 0755 whatever the umask.
                    fchmod(&fd, Mode::from_bits_truncate(0o755))
                        .map_err(|e| Stop::Io("chmod directory", e))?;
                    Ok(fd)
                }
                Err(Errno::EEXIST) => open_subdir(dir, name).map_err(|e| classify(dir, name, e)),
                Err(e) => Err(Stop::Io("create directory", e)),
            }
        }
        Err(e) => Err(classify(dir, name, e)),
    }
}

/// Why `name` in `dir` could not be opened as a directory.
fn classify(dir: &OwnedFd, name: &OsStr, e: Errno) -> Stop {
    match e {
        Errno::ENOENT => Stop::Missing,
        Errno::ELOOP | Errno::ENOTDIR => match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
                Stop::Symlink
            }
            Ok(_) => Stop::NotDir,
            Err(e) => Stop::Io("stat", e),
        },
        e => Stop::Io("open directory", e),
    }
}

/// The parent components and the last one; `None` for the root.
pub(crate) fn split(comps: &[OsString]) -> Option<(&[OsString], &OsStr)> {
    comps
        .split_last()
        .map(|(last, parent)| (parent, last.as_os_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn norm(s: &[u8]) -> Result<Vec<String>, &'static str> {
        normalize(s).map(|c| c.iter().map(|c| c.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn normalisation() {
        assert_eq!(norm(b"a/b").unwrap(), ["a", "b"]);
        assert_eq!(norm(b"./a//b/").unwrap(), ["a", "b"]);
        assert_eq!(norm(b"/etc/x").unwrap(), ["etc", "x"]);
        assert_eq!(norm(b"///etc/./x").unwrap(), ["etc", "x"]);
        assert_eq!(norm(b"./").unwrap(), Vec::<String>::new());
        assert_eq!(norm(b"/").unwrap(), Vec::<String>::new());
        // `..` that stays inside is resolved lexically.
        assert_eq!(norm(b"a/b/../c").unwrap(), ["a", "c"]);
        assert_eq!(norm(b"a/..").unwrap(), Vec::<String>::new());
        assert_eq!(norm(b"..").unwrap_err(), "escapes the layer directory");
        assert_eq!(norm(b"../evil").unwrap_err(), "escapes the layer directory");
        assert_eq!(
            norm(b"/../evil").unwrap_err(),
            "escapes the layer directory"
        );
        assert_eq!(
            norm(b"a/../../evil").unwrap_err(),
            "escapes the layer directory"
        );
        assert_eq!(
            norm(b"./a/./../..").unwrap_err(),
            "escapes the layer directory"
        );
        assert_eq!(norm(b"").unwrap_err(), "empty name");
        assert_eq!(norm(b"a\0b").unwrap_err(), "name contains a NUL byte");
        // Non-UTF-8 bytes are kept as they are.
        assert_eq!(normalize(b"caf\xe9").unwrap()[0].as_bytes(), b"caf\xe9");
    }

    fn root_fd(p: &std::path::Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn walk_creates_missing_dirs_0755() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_fd(tmp.path());
        let comps = normalize(b"a/b/c").unwrap();
        open_dir(&root, &comps, Missing::Create).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(tmp.path().join("a/b/c")).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    }

    #[test]
    fn walk_fail_does_not_create() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root_fd(tmp.path());
        match open_dir(&root, &normalize(b"a/b").unwrap(), Missing::Fail) {
            Err(WalkError::Missing(at)) => assert_eq!(at, "a"),
            other => panic!("{other:?}"),
        }
        assert!(!tmp.path().join("a").exists());
    }

    #[test]
    fn walk_refuses_symlinks_inside_and_out() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        std::fs::create_dir_all(layer.join("d")).unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        symlink(tmp.path().join("outside"), layer.join("out")).unwrap();
        symlink("d", layer.join("in")).unwrap();
        symlink(".", layer.join("dot")).unwrap();
        std::fs::write(layer.join("file"), b"").unwrap();
        let root = root_fd(&layer);
        for (p, want) in [("out/x", "out"), ("in/x", "in"), ("d/../dot/x", "dot")] {
            match open_dir(&root, &normalize(p.as_bytes()).unwrap(), Missing::Create) {
                Err(WalkError::Symlink(at)) => assert_eq!(at, want),
                other => panic!("{p}: {other:?}"),
            }
        }
        match open_dir(&root, &normalize(b"file/x").unwrap(), Missing::Create) {
            Err(WalkError::NotDir(at)) => assert_eq!(at, "file"),
            other => panic!("{other:?}"),
        }
        assert!(!tmp.path().join("outside/x").exists());
        assert!(!layer.join("d/x").exists());
    }
}
