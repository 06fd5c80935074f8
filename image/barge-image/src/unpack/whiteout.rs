//! Docker/OCI whiteouts turned into their overlayfs form.
//!
//! `dir/.wh.name` becomes a character device 0:0 `dir/name` (an overlayfs whiteout);
//! `dir/.wh..wh..opq` becomes the xattr `trusted.overlay.opaque=y` on `dir`; other
//! `.wh..wh.*` names are aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`) and are skipped.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::sys::stat::{mknodat, Mode, SFlag};
use xattr::FileExt;

const PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What a last path component means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    No,
    /// Hide `name` of the lower layers.
    Remove(&'a OsStr),
    /// Hide everything the lower layers have in this directory.
    Opaque,
    /// Aufs metadata: nothing to do.
    Skip,
}

/// Classify a file name; a whiteout of an empty, `.` or `..` name is refused.
pub(crate) fn classify(name: &OsStr) -> Result<Whiteout<'_>, &'static str> {
    let b = name.as_bytes();
    if b == OPAQUE {
        return Ok(Whiteout::Opaque);
    }
    if b.starts_with(META_PREFIX) {
        return Ok(Whiteout::Skip);
    }
    match b.strip_prefix(PREFIX) {
        None => Ok(Whiteout::No),
        Some(b"" | b"." | b"..") => Err("whiteout of an invalid name"),
        Some(rest) => Ok(Whiteout::Remove(OsStr::from_bytes(rest))),
    }
}

/// Create the overlayfs whiteout `name` in `dir` (nothing may be there).
pub(crate) fn make_whiteout(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0)
}

/// Mark the directory open on `dir` opaque.
pub(crate) fn set_opaque(dir: OwnedFd) -> io::Result<()> {
    File::from(dir).set_xattr(OPAQUE_XATTR, b"y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        fn c(s: &str) -> Result<Whiteout<'_>, &'static str> {
            classify(OsStr::new(s))
        }
        assert_eq!(c("passwd").unwrap(), Whiteout::No);
        assert_eq!(c(".whatever").unwrap(), Whiteout::No);
        assert_eq!(
            c(".wh.passwd").unwrap(),
            Whiteout::Remove(OsStr::new("passwd"))
        );
        assert_eq!(
            c(".wh..bashrc").unwrap(),
            Whiteout::Remove(OsStr::new(".bashrc"))
        );
        assert_eq!(c(".wh..wh..opq").unwrap(), Whiteout::Opaque);
        assert_eq!(c(".wh..wh.plnk").unwrap(), Whiteout::Skip);
        assert_eq!(c(".wh..wh.aufs").unwrap(), Whiteout::Skip);
        assert!(c(".wh.").is_err());
        assert!(c(".wh..").is_err());
        assert!(c(".wh...").is_err());
    }
}
