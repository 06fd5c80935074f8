//! Looking at and removing what an entry replaces, relative to directory fds (a directory tree
//! is walked with `O_NOFOLLOW` fds, never by path, and iteratively, so depth costs no stack).

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, FileStat, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::path::open_subdir;

/// The file type bits of a stat.
pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// What is at `name` in `dir`, not following a symlink; `None` if nothing is.
pub(crate) fn lstat_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Make room for a new non-directory at `name`: remove whatever is there (a whole tree for a
/// directory). Nothing there is fine.
pub(crate) fn clear(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    match lstat_at(dir, name)? {
        None => Ok(()),
        Some(st) if kind(&st) == SFlag::S_IFDIR => remove_tree(dir, name),
        Some(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir),
    }
}

struct Frame {
    fd: OwnedFd,
    name: CString,
    children: Vec<(CString, bool)>,
}

/// Remove directory `name` in `dir` and everything below it.
pub(crate) fn remove_tree(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    let top =
        CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name)).map_err(|_| Errno::EINVAL)?;
    let fd = open_subdir(dir, name)?;
    let children = list(&fd)?;
    let mut stack = vec![Frame {
        fd,
        name: top,
        children,
    }];
    while let Some(frame) = stack.last_mut() {
        match frame.children.pop() {
            Some((child, true)) => {
                let fd = open_subdir(&frame.fd, child.as_c_str())?;
                let children = list(&fd)?;
                stack.push(Frame {
                    fd,
                    name: child,
                    children,
                });
            }
            Some((child, false)) => {
                unlinkat(&frame.fd, child.as_c_str(), UnlinkatFlags::NoRemoveDir)?
            }
            None => {
                let done = stack.pop().ok_or(Errno::EINVAL)?;
                let parent = stack.last().map(|f| &f.fd).unwrap_or(dir);
                unlinkat(parent, done.name.as_c_str(), UnlinkatFlags::RemoveDir)?;
            }
        }
    }
    Ok(())
}

/// The entries of a directory (not `.`/`..`), each with whether it is a directory.
fn list(fd: &OwnedFd) -> nix::Result<Vec<(CString, bool)>> {
    let mut d = Dir::from_fd(fd.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match e.file_type() {
            Some(t) => t == Type::Directory,
            None => fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| kind(&st) == SFlag::S_IFDIR)?,
        };
        out.push((name.to_owned(), is_dir));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn removes_a_deep_tree_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(layer.join("d/a/b/c")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        std::fs::write(layer.join("d/a/f"), b"x").unwrap();
        std::fs::write(layer.join("d/a/b/c/g"), b"x").unwrap();
        symlink(&outside, layer.join("d/a/b/out")).unwrap();
        let dir: OwnedFd = std::fs::File::open(&layer).unwrap().into();
        clear(&dir, OsStr::new("d")).unwrap();
        assert!(!layer.join("d").exists());
        assert!(outside.join("keep").exists());
        // Nothing there: fine. A file or a symlink: unlinked, not followed.
        clear(&dir, OsStr::new("d")).unwrap();
        symlink(&outside, layer.join("l")).unwrap();
        clear(&dir, OsStr::new("l")).unwrap();
        assert!(std::fs::symlink_metadata(layer.join("l")).is_err());
        assert!(outside.join("keep").exists());
    }
}
