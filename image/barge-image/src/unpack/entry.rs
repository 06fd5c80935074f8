//! Writing one archive entry into the layer: the leaf operation for its type relative to the fd
//! of its parent directory (found by the safe walk), then owner, mode, xattrs and times.
//!
//! Order matters: content, then `fchown` (which clears setuid/setgid and file capabilities),
//! then `fchmod` (mode with its setuid/setgid/sticky bits), then xattrs (capabilities), then
//! times. Directory times are set last of all, once nothing more is written into them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::{EntryType, Header};
use xattr::FileExt;

use super::path::{self, normalize, open_dir, open_subdir, split, Comps, Missing, WalkError};
use super::pax::Pax;
use super::remove::{clear, kind, lstat_at};
use super::whiteout::{self, Whiteout};
use crate::error::{Error, IoContext, Result};

/// What an entry creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Character or block device, or fifo.
    Node(SFlag),
    /// A PAX global header: nothing to create.
    Skip,
}

fn kind_of(h: &Header, raw_path: &[u8]) -> Result<Kind, String> {
    Ok(match h.entry_type() {
        // Pre-POSIX archives mark directories with a trailing slash on an old-style ('\0')
        // regular entry.
        EntryType::Regular if h.as_bytes()[156] == 0 && raw_path.ends_with(b"/") => Kind::Dir,
        EntryType::Regular | EntryType::Continuous => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => Kind::Symlink,
        EntryType::Link => Kind::Hardlink,
        EntryType::Char => Kind::Node(SFlag::S_IFCHR),
        EntryType::Block => Kind::Node(SFlag::S_IFBLK),
        EntryType::Fifo => Kind::Node(SFlag::S_IFIFO),
        EntryType::XGlobalHeader => Kind::Skip,
        EntryType::GNUSparse => return Err("GNU sparse files are not supported".into()),
        t => {
            return Err(format!(
                "unsupported entry type {:?}",
                char::from(t.as_byte())
            ))
        }
    })
}

/// Owner, mode and times of an entry.
struct Meta {
    mode: Mode,
    uid: Uid,
    gid: Gid,
    mtime: TimeSpec,
    pax: Pax,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::invalid(format!("layer entry {name:?}"), format!("{what}: {e}"))
        };
        let h = entry.header();
        let old = h.as_old();
        let mode = numeric(h.mode().map(u64::from), &old.mode).map_err(|e| bad("mode", &e))?;
        let uid = numeric(h.uid(), &old.uid).map_err(|e| bad("uid", &e))?;
        let uid = u32::try_from(uid).map_err(|e| bad("uid", &e))?;
        let gid = numeric(h.gid(), &old.gid).map_err(|e| bad("gid", &e))?;
        let gid = u32::try_from(gid).map_err(|e| bad("gid", &e))?;
        let header_mtime = numeric(h.mtime(), &old.mtime).map_err(|e| bad("mtime", &e))?;

        let mut records = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| bad("PAX header", &e))? {
            for r in exts {
                let r = r.map_err(|e| bad("PAX record", &e))?;
                records.push((r.key_bytes().to_vec(), r.value_bytes().to_vec()));
            }
        }
        let pax = Pax::from_records(
            records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
            name,
        );
        let (secs, nanos) = match pax.mtime {
            Some(t) => t,
            None => (
                i64::try_from(header_mtime).map_err(|e| bad("mtime", &e))?,
                0,
            ),
        };
        Ok(Meta {
            mode: Mode::from_bits_truncate((mode & 0o7777) as u32),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mtime: TimeSpec::new(secs, nanos),
            pax,
        })
    }
}

/// A numeric header field; a blank one (all NULs or spaces) reads as 0, as in Go's
/// archive/tar, where the tar crate refuses it.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        r => r,
    }
}

fn walk_error(e: WalkError, name: &str, what: &str) -> Error {
    match e {
        WalkError::Missing(at) => {
            Error::unsafe_entry(name, format!("{what}{at} does not exist in the layer"))
        }
        WalkError::Symlink(at) => {
            Error::unsafe_entry(name, format!("{what}would write through symlink {at}"))
        }
        WalkError::NotDir(at) => {
            Error::unsafe_entry(name, format!("{what}{at} is not a directory"))
        }
        WalkError::Io { op, at, err } => Error::io(op, format!("{at} (layer entry {name})"), err),
    }
}

fn os(e: Errno) -> io::Error {
    e.into()
}

/// Extracts entries into one layer directory.
pub(crate) struct Extractor {
    root: OwnedFd,
    /// Every directory entry and its mtime, applied in [`Extractor::finish`].
    dir_times: Vec<(Comps, TimeSpec)>,
    /// Whether we already said that ownership (or a privileged xattr) can't be set.
    warned_unprivileged: bool,
    buf: Vec<u8>,
    /// `.wh.` entries become overlayfs whiteouts (layers); off for `docker cp`'s archives,
    /// whose entries are all plain files.
    pub(crate) whiteouts: bool,
    /// Refuse to replace a directory with a non-directory or the reverse (docker's
    /// `noOverwriteDirNonDir`).
    pub(crate) keep_kinds: bool,
}

impl Extractor {
    pub(crate) fn new(root: OwnedFd) -> Self {
        Extractor {
            root,
            dir_times: Vec::new(),
            warned_unprivileged: false,
            buf: vec![0; 128 << 10],
            whiteouts: true,
            keep_kinds: false,
        }
    }

    pub(crate) fn extract<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let name = name.as_str();
        let kind = kind_of(entry.header(), &raw).map_err(|r| Error::unsafe_entry(name, r))?;
        if kind == Kind::Skip {
            tracing::debug!(entry = name, "layer: PAX global header skipped");
            return Ok(());
        }
        let comps = normalize(&raw).map_err(|r| Error::unsafe_entry(name, r))?;
        let meta = Meta::read(entry, name)?;

        let Some((parent, leaf)) = split(&comps) else {
            return match kind {
                Kind::Dir => self.dir(&comps, &meta, name),
                _ => Err(Error::unsafe_entry(
                    name,
                    "names the layer directory itself but is not a directory",
                )),
            };
        };
        let class = if self.whiteouts {
            whiteout::classify(leaf).map_err(|r| Error::unsafe_entry(name, r))?
        } else {
            Whiteout::No
        };
        if self.keep_kinds {
            self.check_kind(parent, leaf, kind == Kind::Dir, name)?;
        }
        match class {
            Whiteout::No => {}
            Whiteout::Remove(hidden) => return self.whiteout(parent, hidden, &meta, name),
            Whiteout::Opaque => return self.opaque(parent, name),
            Whiteout::Skip => {
                tracing::debug!(entry = name, "layer: aufs metadata skipped");
                return Ok(());
            }
        }
        match kind {
            Kind::Dir => self.dir(&comps, &meta, name),
            Kind::File => {
                let dir = self.parent(parent, name)?;
                self.file(&dir, leaf, entry, &meta, name)
            }
            Kind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(Error::unsafe_entry(name, "invalid symlink target"));
                }
                let dir = self.parent(parent, name)?;
                self.symlink(&dir, leaf, OsStr::from_bytes(&target), &meta, name)
            }
            Kind::Hardlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(&comps, &target, name)
            }
            Kind::Node(k) => {
                let dev = if k == SFlag::S_IFIFO {
                    0
                } else {
                    let h = entry.header();
                    let bad = |e: io::Error| {
                        Error::invalid(
                            format!("layer entry {name:?}"),
                            format!("device number: {e}"),
                        )
                    };
                    let major = h.device_major().map_err(bad)?.unwrap_or(0);
                    let minor = h.device_minor().map_err(bad)?.unwrap_or(0);
                    makedev(major.into(), minor.into())
                };
                let dir = self.parent(parent, name)?;
                self.node(&dir, leaf, k, dev, &meta, name)
            }
            Kind::Skip => Ok(()),
        }
    }

    /// Set the recorded directory times, the latest entry for a directory winning. A directory
    /// removed or replaced since is skipped.
    pub(crate) fn finish(self) -> Result<()> {
        let mut seen = HashSet::new();
        for (comps, t) in self.dir_times.iter().rev() {
            if !seen.insert(comps) {
                continue;
            }
            match open_dir(&self.root, comps, Missing::Fail) {
                Ok(fd) => futimens(&fd, t, t)
                    .map_err(os)
                    .ctx("set directory times", path::display(comps))?,
                Err(e) => {
                    tracing::debug!(dir = %path::display(comps), ?e, "layer: directory gone")
                }
            }
        }
        Ok(())
    }

    /// With `keep_kinds`: what is at the entry's place must be of its kind (directory or
    /// not), if anything is there.
    fn check_kind(
        &self,
        parent: &[std::ffi::OsString],
        leaf: &OsStr,
        dir: bool,
        name: &str,
    ) -> Result<()> {
        let Ok(pfd) = open_dir(&self.root, parent, Missing::Fail) else {
            return Ok(());
        };
        match lstat_at(&pfd, leaf).map_err(os).ctx("stat", name)? {
            Some(st) if (kind(&st) == SFlag::S_IFDIR) != dir => Err(Error::invalid(
                format!("entry {name:?}"),
                if dir {
                    "cannot overwrite a non-directory with a directory"
                } else {
                    "cannot overwrite a directory with a non-directory"
                },
            )),
            _ => Ok(()),
        }
    }

    /// The parent directory of an entry, missing directories created.
    fn parent(&self, parent: &[std::ffi::OsString], name: &str) -> Result<OwnedFd> {
        open_dir(&self.root, parent, Missing::Create).map_err(|e| walk_error(e, name, ""))
    }

    fn dir(&mut self, comps: &Comps, meta: &Meta, name: &str) -> Result<()> {
        let fd = match split(comps) {
            None => self
                .root
                .try_clone()
                .ctx("duplicate layer directory fd", name)?,
            Some((parent, leaf)) => {
                let dir = self.parent(parent, name)?;
                let existing = lstat_at(&dir, leaf).map_err(os).ctx("stat", name)?;
                match existing {
                    Some(st) if kind(&st) == SFlag::S_IFDIR => {}
                    other => {
                        if other.is_some() {
                            unlinkat(&dir, leaf, UnlinkatFlags::NoRemoveDir)
                                .map_err(os)
                                .ctx("remove what a directory replaces", name)?;
                        }
                        mkdirat(&dir, leaf, Mode::from_bits_truncate(0o700))
                            .map_err(os)
                            .ctx("create directory", name)?;
                    }
                }
                open_subdir(&dir, leaf)
                    .map_err(os)
                    .ctx("open directory", name)?
            }
        };
        self.chown(fchown(&fd, Some(meta.uid), Some(meta.gid)), name)?;
        fchmod(&fd, meta.mode)
            .map_err(os)
            .ctx("chmod directory", name)?;
        self.xattrs(&File::from(fd), meta, name)?;
        self.dir_times.push((comps.clone(), meta.mtime));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        dir: &OwnedFd,
        leaf: &OsStr,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        clear(dir, leaf)
            .map_err(os)
            .ctx("remove what a file replaces", name)?;
        let fd = openat(
            dir,
            leaf,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(os)
        .ctx("create file", name)?;
        let mut f = File::from(fd);
        let want = entry.size();
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read layer stream for", name, e)),
            };
            f.write_all(&self.buf[..n]).ctx("write file", name)?;
            written += n as u64;
        }
        if written != want {
            return Err(Error::invalid(
                format!("layer entry {name:?}"),
                format!("truncated: {written} of {want} bytes"),
            ));
        }
        self.chown(fchown(&f, Some(meta.uid), Some(meta.gid)), name)?;
        fchmod(&f, meta.mode).map_err(os).ctx("chmod file", name)?;
        self.xattrs(&f, meta, name)?;
        futimens(&f, &meta.mtime, &meta.mtime)
            .map_err(os)
            .ctx("set file times", name)
    }

    /// Owner of `dir/leaf` itself, never what it points to.
    fn chown_at(&mut self, dir: &OwnedFd, leaf: &OsStr, meta: &Meta, name: &str) -> Result<()> {
        self.chown(
            fchownat(
                dir,
                leaf,
                Some(meta.uid),
                Some(meta.gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ),
            name,
        )
    }

    fn symlink(
        &mut self,
        dir: &OwnedFd,
        leaf: &OsStr,
        target: &OsStr,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        clear(dir, leaf)
            .map_err(os)
            .ctx("remove what a symlink replaces", name)?;
        symlinkat(target, dir, leaf)
            .map_err(os)
            .ctx("create symlink", name)?;
        self.chown_at(dir, leaf, meta, name)?;
        finish_at(dir, leaf, meta, name, ("symlink", "set symlink times"))
    }

    /// A hard link to `target`, an entry path that must already exist in this layer (found by
    /// the same walk, so never through a symlink and never outside) and not be a directory.
    fn hardlink(&mut self, comps: &Comps, target: &[u8], name: &str) -> Result<()> {
        let shown = String::from_utf8_lossy(target).into_owned();
        let what = format!("hardlink target {shown:?}: ");
        let tcomps =
            normalize(target).map_err(|r| Error::unsafe_entry(name, format!("{what}{r}")))?;
        let Some((tparent, tleaf)) = split(&tcomps) else {
            return Err(Error::unsafe_entry(
                name,
                format!("{what}is the layer directory"),
            ));
        };
        let tdir =
            open_dir(&self.root, tparent, Missing::Fail).map_err(|e| walk_error(e, name, &what))?;
        match lstat_at(&tdir, tleaf)
            .map_err(os)
            .ctx("stat hardlink target of", name)?
        {
            None => {
                return Err(Error::unsafe_entry(
                    name,
                    format!("{what}does not exist in the layer"),
                ))
            }
            Some(st) if kind(&st) == SFlag::S_IFDIR => {
                return Err(Error::unsafe_entry(name, format!("{what}is a directory")))
            }
            Some(_) => {}
        }
        let Some((parent, leaf)) = split(comps) else {
            return Err(Error::unsafe_entry(name, "hardlink at the layer directory"));
        };
        if tcomps == *comps {
            tracing::debug!(entry = name, "layer: hardlink to itself skipped");
            return Ok(());
        }
        let dir = self.parent(parent, name)?;
        clear(&dir, leaf)
            .map_err(os)
            .ctx("remove what a hardlink replaces", name)?;
        linkat(&tdir, tleaf, &dir, leaf, AtFlags::empty())
            .map_err(os)
            .ctx("create hardlink", name)
    }

    /// A device node or fifo.
    fn node(
        &mut self,
        dir: &OwnedFd,
        leaf: &OsStr,
        k: SFlag,
        dev: nix::libc::dev_t,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        clear(dir, leaf)
            .map_err(os)
            .ctx("remove what a device node replaces", name)?;
        match mknodat(dir, leaf, k, Mode::empty(), dev) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                return Err(Error::unsafe_entry(
                    name,
                    "creating a device node was refused (EPERM): extracting this layer needs \
                     CAP_MKNOD, which rootless extraction does not have",
                ))
            }
            Err(e) => return Err(Error::io("create device node", name, e.into())),
        }
        self.chown_at(dir, leaf, meta, name)?;
        chmod_node(dir, leaf, meta.mode)
            .map_err(os)
            .ctx("chmod device node", name)?;
        finish_at(
            dir,
            leaf,
            meta,
            name,
            ("device node", "set device node times"),
        )
    }

    /// `dir/.wh.hidden`: an overlayfs whiteout `dir/hidden` (char device 0:0).
    fn whiteout(
        &mut self,
        parent: &[std::ffi::OsString],
        hidden: &OsStr,
        meta: &Meta,
        name: &str,
    ) -> Result<()> {
        let dir = self.parent(parent, name)?;
        clear(&dir, hidden)
            .map_err(os)
            .ctx("remove what a whiteout replaces", name)?;
        match whiteout::make_whiteout(&dir, hidden) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                return Err(Error::unsafe_entry(
                    name,
                    "creating the overlayfs whiteout (a 0:0 character device) was refused \
                     (EPERM): needs CAP_MKNOD",
                ))
            }
            Err(e) => return Err(Error::io("create whiteout", name, e.into())),
        }
        self.chown(
            fchownat(
                &dir,
                hidden,
                Some(meta.uid),
                Some(meta.gid),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ),
            name,
        )
    }

    /// `dir/.wh..wh..opq`: `dir` (created if missing) marked opaque.
    fn opaque(&mut self, parent: &[std::ffi::OsString], name: &str) -> Result<()> {
        let dir = self.parent(parent, name)?;
        whiteout::set_opaque(dir).ctx("set trusted.overlay.opaque for", name)
    }

    /// Ownership that can't be set unprivileged (EPERM, or EINVAL for an id not mapped in our
    /// user namespace) is warned about once and otherwise ignored.
    fn chown(&mut self, r: nix::Result<()>, name: &str) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e @ (Errno::EPERM | Errno::EINVAL)) => {
                self.warn_unprivileged(name, "ownership", e);
                Ok(())
            }
            Err(e) => Err(Error::io("chown", name, e.into())),
        }
    }

    fn warn_unprivileged(&mut self, name: &str, what: &str, e: Errno) {
        if !self.warned_unprivileged {
            self.warned_unprivileged = true;
            tracing::warn!(
                entry = name,
                error = %e,
                "layer: can't set {what} (not privileged?); keeping what we can, \
                 further such failures are not reported"
            );
        }
    }

    fn xattrs(&mut self, f: &File, meta: &Meta, name: &str) -> Result<()> {
        for (k, v) in &meta.pax.xattrs {
            if let Err(e) = f.set_xattr(k, v) {
                match e.raw_os_error().map(Errno::from_raw) {
                    Some(en @ (Errno::EPERM | Errno::ENOTSUP)) => {
                        self.warn_unprivileged(name, "extended attributes", en)
                    }
                    _ => {
                        return Err(Error::io(
                            "set extended attribute",
                            format!("{name} ({})", k.to_string_lossy()),
                            e,
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// chmod a node this extraction just created. `fchmodat(AT_SYMLINK_NOFOLLOW)` where the C
/// library can (glibc and musl emulate it through an O_PATH fd); where it can't, the node we
/// just made with mknodat, in a parent we hold open, is not a symlink, so plain fchmodat is
/// the same file.
fn chmod_node(dir: &OwnedFd, leaf: &OsStr, mode: Mode) -> nix::Result<()> {
    match fchmodat(dir, leaf, mode, FchmodatFlags::NoFollowSymlink) {
        Err(Errno::ENOTSUP | Errno::ENOSYS) => {
            fchmodat(dir, leaf, mode, FchmodatFlags::FollowSymlink)
        }
        r => r,
    }
}

/// The last step for a symlink or device node (`what`): their xattrs are skipped (no safe
/// fd-based call on old kernels), their times set without following.
fn finish_at(
    dir: &OwnedFd,
    leaf: &OsStr,
    meta: &Meta,
    name: &str,
    (what, op): (&str, &'static str),
) -> Result<()> {
    if !meta.pax.xattrs.is_empty() {
        tracing::debug!(
            entry = name,
            "layer: extended attributes on a {what} skipped"
        );
    }
    utimensat(
        dir,
        leaf,
        &meta.mtime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(os)
    .ctx(op, name)
}
