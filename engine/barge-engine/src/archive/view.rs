//! A container's filesystem as its processes see it, from the host: the rootfs with the
//! container's volumes and bind mounts over it. Paths are resolved the way the kernel would
//! inside the container (symlinks relative to the container's root, `..` stopping at `/`,
//! crossing into mounts), but every lookup is one component at a time on directory fds with
//! `O_NOFOLLOW`: a symlink planted by the container (even mid-request) cannot lead outside.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};

use crate::error::{Error, Result};

/// The most symlinks one resolution follows (the kernel's limit).
const MAX_LINKS: usize = 40;

/// One mount over the rootfs: its place in the container and its host directory.
struct Mounted {
    dest: Vec<OsString>,
    source: PathBuf,
    readonly: bool,
}

pub struct View {
    rootfs: PathBuf,
    rootfs_readonly: bool,
    mounts: Vec<Mounted>,
}

/// Where a container path is on the host: a trusted base directory and the components
/// below it (none of them a symlink when resolved).
pub struct Place<'a> {
    pub base: &'a Path,
    pub rel: Vec<OsString>,
    pub readonly: bool,
}

pub fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}

fn os(what: &str, e: nix::Error) -> Error {
    Error::Other(format!("{what}: {e}"))
}

impl View {
    /// `mounts`: (destination in the container, host directory, read-only).
    pub fn new(
        rootfs: PathBuf,
        rootfs_readonly: bool,
        mounts: Vec<(String, PathBuf, bool)>,
    ) -> View {
        let mut mounts: Vec<Mounted> = mounts
            .into_iter()
            .map(|(d, source, readonly)| Mounted {
                dest: components(d.as_bytes()),
                source,
                readonly,
            })
            .collect();
        // The deepest mount wins.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.dest.len()));
        View {
            rootfs,
            rootfs_readonly,
            mounts,
        }
    }

    /// The host place of resolved container components.
    pub fn place(&self, comps: &[OsString]) -> Place<'_> {
        for m in &self.mounts {
            if comps.len() >= m.dest.len() && comps[..m.dest.len()] == m.dest[..] {
                return Place {
                    base: &m.source,
                    rel: comps[m.dest.len()..].to_vec(),
                    readonly: m.readonly,
                };
            }
        }
        Place {
            base: &self.rootfs,
            rel: comps.to_vec(),
            readonly: self.rootfs_readonly,
        }
    }

    /// Open the directory `rel` below `base`, one component at a time, never following a
    /// symlink.
    pub fn open_dir(base: &Path, rel: &[OsString]) -> Result<OwnedFd> {
        let mut fd = nix::fcntl::open(
            base,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os(&format!("open {}", base.display()), e))?;
        for c in rel {
            fd = openat(
                &fd,
                c.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                nix::Error::ENOENT => Error::NoSuchPath {
                    container: String::new(),
                    path: c.to_string_lossy().into_owned(),
                },
                nix::Error::ENOTDIR | nix::Error::ELOOP => {
                    Error::Invalid(format!("{}: not a directory", c.to_string_lossy()))
                }
                e => os(&format!("open {}", c.to_string_lossy()), e),
            })?;
        }
        Ok(fd)
    }

    /// The parent directory fd and the leaf name of resolved components (`None` leaf: the
    /// place is a mount's or the rootfs's top).
    pub fn parent_of(&self, comps: &[OsString]) -> Result<(OwnedFd, Option<OsString>)> {
        let p = self.place(comps);
        match p.rel.split_last() {
            None => Ok((Self::open_dir(p.base, &[])?, None)),
            Some((leaf, parent)) => Ok((Self::open_dir(p.base, parent)?, Some(leaf.clone()))),
        }
    }

    /// lstat of resolved components; `None` when nothing is there.
    pub fn lstat(&self, comps: &[OsString]) -> Result<Option<FileStat>> {
        let (dir, leaf) = match self.parent_of(comps) {
            Ok(x) => x,
            Err(Error::NoSuchPath { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let leaf = leaf.unwrap_or_else(|| OsString::from("."));
        match fstatat(&dir, leaf.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => Ok(None),
            Err(e) => Err(os("stat", e)),
        }
    }

    /// The target of the symlink at resolved components.
    pub fn readlink(&self, comps: &[OsString]) -> Result<OsString> {
        let (dir, leaf) = self.parent_of(comps)?;
        let leaf = leaf.unwrap_or_else(|| OsString::from("."));
        readlinkat(&dir, leaf.as_os_str()).map_err(|e| os("readlink", e))
    }

    /// Resolve a container path to symlink-free components: every symlink on the way is
    /// followed inside the container, the last one only with `follow_last`. What does not
    /// exist is left as named (the caller decides whether that is an error).
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<OsString>> {
        let mut todo: Vec<OsString> = split_raw(path.as_bytes());
        todo.reverse();
        let mut done: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == "." {
                continue;
            }
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            if todo.is_empty() && !follow_last {
                break;
            }
            let Some(st) = self.lstat(&done)? else {
                continue;
            };
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Error::Invalid(format!(
                    "{path}: too many levels of symbolic links"
                )));
            }
            let target = self.readlink(&done)?;
            done.pop();
            let t = target.as_bytes();
            if t.starts_with(b"/") {
                done.clear();
            }
            let mut more = split_raw(t);
            more.reverse();
            todo.extend(more);
        }
        Ok(done)
    }
}

/// Path components with `.` and `..` kept (they are resolved against what came before).
fn split_raw(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}
