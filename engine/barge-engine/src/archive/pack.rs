//! A tar of a tree read through directory fds (`O_NOFOLLOW` at every step): a symlink
//! swapped in by the container while the tar is written is archived as a symlink or makes the
//! copy fail, never followed out of the container.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use tar::{Builder, EntryType, Header};

use crate::error::{Error, Result};

fn err(what: &str, name: &Path, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("{what} {}: {e}", name.display()))
}

fn header(st: &FileStat, kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(size);
    h
}

/// Archive `leaf` of the directory `dir` as `name` (and everything below it).
pub fn add<W: Write>(b: &mut Builder<W>, dir: &OwnedFd, leaf: &OsStr, name: &Path) -> Result<()> {
    let st = fstatat(dir, leaf, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| err("stat", name, e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR {
        let mut h = header(&st, EntryType::Directory, 0);
        b.append_data(&mut h, name, std::io::empty())
            .map_err(|e| err("archive", name, e))?;
        let fd = openat(
            dir,
            leaf,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", name, e))?;
        let mut names: Vec<OsString> = Vec::new();
        {
            let dup = fd.try_clone().map_err(|e| err("dup", name, e))?;
            let mut d = Dir::from_fd(dup).map_err(|e| err("read directory", name, e))?;
            for ent in d.iter() {
                let ent = ent.map_err(|e| err("read directory", name, e))?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsStr::from_bytes(n).to_os_string());
                }
            }
        }
        names.sort();
        for n in names {
            add(b, &fd, &n, &name.join(&n))?;
        }
        return Ok(());
    }
    if kind == SFlag::S_IFREG {
        let fd = openat(
            dir,
            leaf,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", name, e))?;
        let now = fstat(&fd).map_err(|e| err("stat", name, e))?;
        let size = u64::try_from(now.st_size).unwrap_or(0);
        let mut h = header(&now, EntryType::Regular, size);
        // The size is fixed in the header: a file growing meanwhile is cut, one shrinking is
        // padded with zeros (tar needs the announced length).
        let f = File::from(fd)
            .take(size)
            .chain(std::io::repeat(0).take(size));
        b.append_data(&mut h, name, f.take(size))
            .map_err(|e| err("archive", name, e))?;
        return Ok(());
    }
    if kind == SFlag::S_IFLNK {
        let target = readlinkat(dir, leaf).map_err(|e| err("readlink", name, e))?;
        let mut h = header(&st, EntryType::Symlink, 0);
        b.append_link(&mut h, name, PathBuf::from(target))
            .map_err(|e| err("archive", name, e))?;
        return Ok(());
    }
    let entry = match kind {
        SFlag::S_IFIFO => EntryType::Fifo,
        SFlag::S_IFCHR => EntryType::Char,
        SFlag::S_IFBLK => EntryType::Block,
        // Sockets have no tar form; docker skips them too.
        _ => return Ok(()),
    };
    let mut h = header(&st, entry, 0);
    let rdev = st.st_rdev;
    let _ = h.set_device_major(nix::sys::stat::major(rdev) as u32);
    let _ = h.set_device_minor(nix::sys::stat::minor(rdev) as u32);
    b.append_data(&mut h, name, std::io::empty())
        .map_err(|e| err("archive", name, e))?;
    Ok(())
}
