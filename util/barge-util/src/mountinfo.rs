//! `/proc/PID/mountinfo`, parsed once for everyone (proc(5)):
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//! ```
//!
//! The kernel escapes space, tab, newline and backslash in paths as `\040`, `\011`, `\012` and
//! `\134`; the path fields come back decoded, byte for byte (a path need not be UTF-8).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One mount, one line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent_id: u32,
    /// `major:minor` of the file system.
    pub dev: String,
    /// The directory of the file system that is mounted here (decoded).
    pub root: PathBuf,
    /// Where it is mounted (decoded).
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,…`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`, …).
    pub optional: Vec<String>,
    pub fstype: String,
    /// The mount source (decoded; `none`, a device, a path).
    pub source: String,
    /// Per-superblock options (`rw,cpu,cpuacct`, …).
    pub super_options: String,
}

impl Mount {
    /// Whether the mount propagates to peers (`shared:N` among the optional fields).
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }
}

/// Parse a whole mountinfo text; lines that do not have mountinfo's shape are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Parse one mountinfo line.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let parent_id = l.next()?.parse().ok()?;
    let dev = l.next()?.to_string();
    let root = decode_path(l.next()?);
    let mount_point = decode_path(l.next()?);
    let options = l.next()?.to_string();
    let optional = l.filter(|o| !o.is_empty()).map(str::to_string).collect();
    let mut r = right.split(' ');
    let fstype = unescape(r.next()?);
    let source = unescape(r.next()?);
    let super_options = r.next().unwrap_or_default().to_string();
    Some(Mount {
        id,
        parent_id,
        dev,
        root,
        mount_point,
        options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// The mounts this process sees (`/proc/self/mountinfo`).
pub fn read_self() -> io::Result<Vec<Mount>> {
    read(Path::new("/proc/self/mountinfo"))
}

/// The mounts listed in a mountinfo file.
pub fn read(path: &Path) -> io::Result<Vec<Mount>> {
    std::fs::read_to_string(path)
        .map(|text| parse(&text))
        .map_err(|e| crate::fs::io_error("read", path, e))
}

/// Decode mountinfo's octal escapes (`\040` → space) to the raw bytes.
pub fn unescape_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3');
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Decode mountinfo's octal escapes to text (bytes that are not UTF-8 are replaced).
pub fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(s)).into_owned()
}

fn decode_path(s: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape_bytes(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_line() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((m.id, m.parent_id), (36, 35));
        assert_eq!(m.dev, "98:0");
        assert_eq!(m.root, Path::new("/mnt1"));
        assert_eq!(m.mount_point, Path::new("/mnt2"));
        assert_eq!(m.options, "rw,noatime");
        assert_eq!(m.optional, ["master:1", "shared:7"]);
        assert!(m.is_shared());
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(m.super_options, "rw,errors=continue");
    }

    #[test]
    fn no_optional_fields() {
        let m = parse_line("25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw").unwrap();
        assert!(m.optional.is_empty());
        assert!(!m.is_shared());
        assert_eq!(m.fstype, "cgroup2");
    }

    #[test]
    fn escapes_in_paths_are_decoded() {
        let m = parse_line(
            r"90 36 0:50 /src\040dir /mnt/a\040b\011c\012d\134e rw - tmpfs my\040tmp rw",
        )
        .unwrap();
        assert_eq!(m.root, Path::new("/src dir"));
        assert_eq!(m.mount_point, Path::new("/mnt/a b\tc\nd\\e"));
        assert_eq!(m.source, "my tmp");
    }

    #[test]
    fn a_mount_point_with_a_dash_field_lookalike() {
        // A directory named " - x" is escaped, so the separator is still the first " - ".
        let m = parse_line(r"91 36 0:51 / /mnt/\040-\040x rw shared:3 - tmpfs tmpfs rw").unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt/ - x"));
        assert_eq!(m.fstype, "tmpfs");
    }

    #[test]
    fn unescape_leaves_other_backslashes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/x\9y\04"), r"/x\9y\04");
        assert_eq!(unescape(r"\134\134"), r"\\");
        assert_eq!(unescape_bytes(r"\377"), [0xff]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let all = parse("garbage\n1 2 3\n25 1 0:22 / / rw - ext4 /dev/sda1 rw\n\n");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].mount_point, Path::new("/"));
    }

    #[test]
    fn own_mounts_include_root() {
        let all = read_self().unwrap();
        assert!(all.iter().any(|m| m.mount_point == Path::new("/")));
    }
}
