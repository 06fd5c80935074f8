//! What `create` puts in place before the container first runs, as docker does: the working
//! directory inside the rootfs, and the image's content at a volume's mount point copied
//! into a new (empty) volume.
//!
//! Paths inside the rootfs are resolved with `openat2(RESOLVE_IN_ROOT)` (the runtime's
//! resolver): an image's symlink can never lead outside its rootfs. The copy never follows
//! symlinks; it keeps types, modes, owners and times (not extended attributes, nor hard
//! links: each link becomes its own file).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use barge_runtime::rootfs::resolve::{self, Kind, Root};
use nix::sys::stat::{utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::{Error, IoContext, Result};

/// Create the working directory `wd` (absolute, inside the container) in the rootfs with
/// its missing parents (root-owned, 0755, as docker does); an existing one is kept. It
/// must be a directory.
pub fn working_dir(rootfs: &Path, wd: &str) -> Result<()> {
    if wd.is_empty() || wd == "/" {
        return Ok(());
    }
    let root = Root::open(rootfs)?;
    let fd = root.create(Path::new(wd), Kind::Dir)?;
    let st =
        nix::sys::stat::fstat(&fd).map_err(Error::sys(format!("stat working directory {wd}")))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(Error::BadParameter(format!(
            "Cannot mkdir: {wd} is not a directory"
        )));
    }
    Ok(())
}

/// Fill the volume directory `volume` with the image's content at `dest` when the volume is
/// empty and the image has a directory there (docker's copy on first use); the volume's
/// root takes that directory's owner and mode. Whether anything was copied.
pub fn volume_from_image(rootfs: &Path, dest: &str, volume: &Path) -> Result<bool> {
    let mut entries = fs::read_dir(volume).ctx("read volume", volume)?;
    if entries.next().is_some() {
        return Ok(false);
    }
    let root = Root::open(rootfs)?;
    let Some(fd) = root.lookup(Path::new(dest))? else {
        return Ok(false);
    };
    // Through the resolved descriptor: the same directory, found inside the rootfs.
    let src = resolve::fd_path(&fd);
    let meta = fs::metadata(&src).ctx("stat", &src)?;
    if !meta.is_dir() {
        return Ok(false);
    }
    let copied = copy_dir(&src, volume).and_then(|()| copy_meta(&meta, volume));
    if let Err(e) = copied {
        // It was empty: leave it so (a later container copies again).
        if let Ok(rd) = fs::read_dir(volume) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = match e.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                    _ => fs::remove_file(&p),
                };
            }
        }
        return Err(e);
    }
    Ok(true)
}

/// Copy the entries of `src` into the existing directory `dst`, recursively.
fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    for e in fs::read_dir(src).ctx("read", src)? {
        let e = e.ctx("read", src)?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let meta = fs::symlink_metadata(&from).ctx("stat", &from)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).ctx("create", &to)?;
            copy_dir(&from, &to)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).ctx("read symlink", &from)?;
            std::os::unix::fs::symlink(&target, &to).ctx("create symlink", &to)?;
        } else if ft.is_file() {
            fs::copy(&from, &to).ctx("copy to", &to)?;
        } else if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket() {
            let kind = SFlag::from_bits_truncate(meta.mode()) & SFlag::S_IFMT;
            nix::sys::stat::mknod(
                &to,
                kind,
                Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )
            .map_err(|e| Error::Io {
                what: "create node",
                path: to.clone(),
                source: e.into(),
            })?;
        }
        copy_meta(&meta, &to)?;
    }
    Ok(())
}

/// Give `to` the owner, mode (after the owner: chown clears setuid bits) and times of
/// `meta`; a symlink keeps only its owner and times.
fn copy_meta(meta: &fs::Metadata, to: &Path) -> Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).ctx("chown", to)?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("chmod", to)?;
    }
    let (atime, mtime) = (
        TimeSpec::new(meta.atime(), meta.atime_nsec()),
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    );
    utimensat(
        nix::fcntl::AT_FDCWD,
        to,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Io {
        what: "set times of",
        path: to.to_path_buf(),
        source: e.into(),
    })
}
