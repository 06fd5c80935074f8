//! What we take from an entry's PAX records beyond what the tar crate applies itself (path,
//! linkpath, size, uid, gid): a sub-second `mtime` and `SCHILY.xattr.*` extended attributes.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// PAX metadata of one entry.
#[derive(Debug, Default)]
pub(crate) struct Pax {
    /// `mtime` as (seconds, nanoseconds), if present and well-formed.
    pub mtime: Option<(i64, i64)>,
    /// Extended attributes to apply, in archive order.
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Pax {
    /// Collect from `(key, value)` records; malformed or unwanted ones are logged and skipped.
    pub(crate) fn from_records<'a>(
        records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        entry: &str,
    ) -> Pax {
        let mut pax = Pax::default();
        for (key, value) in records {
            if key == b"mtime" {
                pax.mtime = parse_time(value);
            } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                if xattr_allowed(name) {
                    pax.xattrs
                        .push((OsString::from_vec(name.to_vec()), value.to_vec()));
                } else {
                    tracing::debug!(
                        entry,
                        xattr = %String::from_utf8_lossy(name),
                        "layer entry: extended attribute skipped"
                    );
                }
            }
        }
        pax
    }
}

/// The extended attributes a layer may carry: file capabilities, `user.*`, and `trusted.*`
/// except `trusted.overlay.*`, which is overlayfs's own metadata (opaque, redirect, metacopy,
/// origin): only the snapshotter writes those, from the whiteout conventions.
pub(crate) fn xattr_allowed(name: &[u8]) -> bool {
    name == b"security.capability"
        || (name.starts_with(b"user.") && name.len() > 5)
        || (name.starts_with(b"trusted.")
            && name.len() > 8
            && !name.starts_with(b"trusted.overlay."))
}

/// A PAX time: `[-]seconds[.fraction]` to (seconds, nanoseconds), nanoseconds in 0..1e9.
pub(crate) fn parse_time(v: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    if !neg {
        return Some((secs, nanos));
    }
    if nanos == 0 {
        Some((secs.checked_neg()?, 0))
    } else {
        Some((secs.checked_neg()?.checked_sub(1)?, 1_000_000_000 - nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_time(b"12.1234567891234"), Some((12, 123_456_789)));
        assert_eq!(parse_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_time(b""), None);
        assert_eq!(parse_time(b".5"), None);
        assert_eq!(parse_time(b"1e9"), None);
        assert_eq!(parse_time(b"1.x"), None);
        assert_eq!(parse_time(b"99999999999999999999999"), None);
    }

    #[test]
    fn xattr_policy() {
        assert!(xattr_allowed(b"security.capability"));
        assert!(xattr_allowed(b"user.foo"));
        assert!(xattr_allowed(b"trusted.foo"));
        assert!(!xattr_allowed(b"trusted.overlay.opaque"));
        assert!(!xattr_allowed(b"trusted.overlay.redirect"));
        assert!(!xattr_allowed(b"security.selinux"));
        assert!(!xattr_allowed(b"system.posix_acl_access"));
        assert!(!xattr_allowed(b"user."));
    }

    #[test]
    fn records() {
        let recs: Vec<(&[u8], &[u8])> = vec![
            (b"path", b"x"),
            (b"mtime", b"5.25"),
            (b"SCHILY.xattr.user.a", b"1"),
            (b"SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            (b"SCHILY.xattr.security.capability", b"\x01\x00"),
        ];
        let p = Pax::from_records(recs.into_iter(), "x");
        assert_eq!(p.mtime, Some((5, 250_000_000)));
        assert_eq!(
            p.xattrs,
            vec![
                (OsString::from("user.a"), b"1".to_vec()),
                (OsString::from("security.capability"), b"\x01\x00".to_vec()),
            ]
        );
    }
}
