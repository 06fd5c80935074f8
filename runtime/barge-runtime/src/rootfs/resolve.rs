//! Resolving paths inside the container rootfs without ever leaving it.
//!
//! Every lookup goes through `openat2(RESOLVE_IN_ROOT)` against an fd of the rootfs, so `..` and
//! symlinks (absolute or relative) are resolved as if the rootfs were `/`. Mounts are then made
//! onto `/proc/self/fd/N` of the resolved O_PATH fd, so a symlink swapped in after the lookup
//! cannot redirect the mount onto the host (CVE-2021-30465 class).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{at, Context, Error, Result};

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Symlinks followed while creating one path before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

enum Step {
    Done(OwnedFd),
    Follow(PathBuf),
}

/// An open container rootfs.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// `/proc/self/fd/N` for an fd: the path through which a mount lands exactly on that inode.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn in_root() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

impl Root {
    pub fn open(path: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| at("open rootfs", path))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `dest` (a path inside the container) as O_PATH; Ok(None) if it does not exist.
    pub fn lookup(&self, dest: &Path) -> Result<Option<OwnedFd>> {
        let rel = relative(dest);
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(in_root());
        match openat2(self.fd.as_fd(), rel.as_path(), how) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e).ctx(|| self.describe("resolve", dest)),
        }
    }

    /// Open `dest` as O_PATH, creating missing directories and, at the end, a `kind`.
    ///
    /// A dangling symlink on the way is followed inside the rootfs and its target created
    /// there, as the kernel would resolve it once the rootfs is `/`.
    pub fn create(&self, dest: &Path, kind: Kind) -> Result<OwnedFd> {
        let mut dest = dest.to_path_buf();
        for _ in 0..MAX_SYMLINKS {
            match self.create_step(&dest, kind)? {
                Step::Done(fd) => return Ok(fd),
                Step::Follow(next) => dest = next,
            }
        }
        Err(Error::Container(format!(
            "{}: too many levels of symbolic links",
            self.describe("create", &dest)
        )))
    }

    fn create_step(&self, dest: &Path, kind: Kind) -> Result<Step> {
        if let Some(fd) = self.lookup(dest)? {
            return Ok(Step::Done(fd));
        }
        let rel = relative(dest);
        let comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
        let mut parent = self.dup_root()?;
        let mut so_far = PathBuf::new();
        for (i, name) in comps.iter().enumerate() {
            so_far.push(name);
            if let Some(fd) = self.lookup(&so_far)? {
                parent = fd;
                continue;
            }
            let last = i + 1 == comps.len();
            let made = if last && kind == Kind::File {
                openat(
                    parent.as_fd(),
                    *name,
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop)
            } else {
                mkdirat(parent.as_fd(), *name, Mode::from_bits_truncate(0o755))
            };
            match made {
                Ok(()) => {}
                // EEXIST: a dangling symlink (the lookup above failed). ELOOP: O_NOFOLLOW hit one.
                Err(Errno::EEXIST | Errno::ELOOP) => {
                    let target = readlinkat(parent.as_fd(), *name)
                        .ctx(|| self.describe("read symlink", &so_far))?;
                    let base = so_far.parent().unwrap_or(Path::new("")).to_path_buf();
                    let mut next = Path::new("/").join(base).join(target);
                    for rest in &comps[i + 1..] {
                        next.push(rest);
                    }
                    return Ok(Step::Follow(next));
                }
                Err(e) => return Err(e).ctx(|| self.describe("create", &so_far)),
            }
            parent = self.lookup(&so_far)?.ok_or_else(|| {
                Error::Container(format!("{} vanished", self.describe("create", &so_far)))
            })?;
        }
        Ok(Step::Done(parent))
    }

    fn dup_root(&self) -> Result<OwnedFd> {
        self.fd
            .try_clone()
            .ctx(|| at("duplicate rootfs fd", &self.path))
    }

    fn describe(&self, verb: &str, dest: &Path) -> String {
        format!(
            "{verb} {} in rootfs {}",
            dest.display(),
            self.path.display()
        )
    }
}

/// Strip the leading `/` and any `.` components; `..` stays (RESOLVE_IN_ROOT clamps it at root).
fn relative(dest: &Path) -> PathBuf {
    let p: PathBuf = dest
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_pointing_out_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = d.path();
        symlink(outside.path(), root.join("escape")).unwrap();
        symlink("../../../../", root.join("up")).unwrap();
        let r = Root::open(root).unwrap();
        let fd = r.create(Path::new("/escape/sub"), Kind::Dir).unwrap();
        let got = real(&fd);
        let root_real = root.canonicalize().unwrap();
        assert!(got.starts_with(&root_real), "{got:?} is outside {root:?}");
        // The absolute link target is created inside the rootfs, never on the host.
        let inside = root_real
            .join(outside.path().strip_prefix("/").unwrap())
            .join("sub");
        assert_eq!(got, inside);
        assert!(!outside.path().join("sub").exists());
        symlink("loop", root.join("loop")).unwrap();
        assert!(r.create(Path::new("/loop/x"), Kind::Dir).is_err());
        let fd = r.create(Path::new("/up/etc/x"), Kind::File).unwrap();
        assert_eq!(real(&fd), root.canonicalize().unwrap().join("etc/x"));
    }

    #[test]
    fn creates_nested_dirs_and_files() {
        let d = tempfile::tempdir().unwrap();
        let r = Root::open(d.path()).unwrap();
        r.create(Path::new("/a/b/c"), Kind::Dir).unwrap();
        r.create(Path::new("/a/f"), Kind::File).unwrap();
        assert!(d.path().join("a/b/c").is_dir());
        assert!(d.path().join("a/f").is_file());
        assert!(r.lookup(Path::new("/nope")).unwrap().is_none());
    }
}
