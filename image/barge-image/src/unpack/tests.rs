//! End-to-end extraction tests (run as root): each builds a tar stream in memory, extracts it
//! into `tmp/layer/` and checks the real effect on disk, inside and outside the layer.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;

const MTIME: u64 = 1_600_000_000;

/// A tempdir with an empty `layer/` inside; `outside()` is its sibling space.
struct Fixture {
    tmp: tempfile::TempDir,
    layer: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir(&layer).unwrap();
        Fixture { tmp, layer }
    }

    fn out(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn at(&self, p: &str) -> PathBuf {
        self.layer.join(p)
    }

    fn unpack(&self, tar: &[u8]) -> Result<UnpackStats> {
        unpack_layer(tar, &self.layer, &Limits::default())
    }
}

fn header(name: &[u8], ty: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    let g = h.as_gnu_mut().unwrap();
    g.name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

fn set_link(h: &mut Header, target: &[u8]) {
    let g = h.as_gnu_mut().unwrap();
    g.linkname[..target.len()].copy_from_slice(target);
}

/// A tar stream under construction; names are written raw so hostile ones get through.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_as(name.as_bytes(), data, 0o644, 0, 0)
    }

    fn file_as(&mut self, name: &[u8], data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = header(name, EntryType::Regular, data.len() as u64, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.raw(h, data)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(header(name.as_bytes(), EntryType::Directory, 0, mode), b"")
    }

    fn link(&mut self, ty: EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = header(name.as_bytes(), ty, 0, 0o777);
        set_link(&mut h, target.as_bytes());
        self.raw(h, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Symlink, name, target)
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Link, name, target)
    }

    /// A PAX extended header for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = [b" ", k.as_bytes(), b"=", v, b"\n"].concat();
            // The length counts its own digits.
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            data.extend(len.to_string().as_bytes());
            data.extend(&body);
        }
        let h = header(
            b"PaxHeaders/x",
            EntryType::XHeader,
            data.len() as u64,
            0o644,
        );
        self.raw(h, &data)
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        std::mem::take(self.0.get_mut())
    }
}

fn unsafe_entry(r: Result<UnpackStats>) -> (String, String) {
    match r {
        Err(Error::UnsafeEntry { entry, reason }) => (entry, reason),
        other => panic!("expected UnsafeEntry, got {other:?}"),
    }
}

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

#[test]
fn dotdot_escaping_the_layer_is_refused() {
    for name in ["../evil", "a/../../evil", "./../evil", "/../evil"] {
        let f = Fixture::new();
        let tar = Tar::new().file(name, b"x").finish();
        let (entry, reason) = unsafe_entry(f.unpack(&tar));
        assert_eq!(entry, name);
        assert!(reason.contains("escapes the layer directory"), "{reason}");
        assert!(!exists(&f.out("evil")), "{name}");
        let msg = f.unpack(&tar).unwrap_err().to_string();
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn dotdot_inside_is_resolved_lexically() {
    let f = Fixture::new();
    f.unpack(&Tar::new().file("a/../b", b"x").finish()).unwrap();
    assert_eq!(fs::read(f.at("b")).unwrap(), b"x");
}

#[test]
fn absolute_names_land_inside() {
    let f = Fixture::new();
    f.unpack(&Tar::new().file("/etc/x", b"inside").finish())
        .unwrap();
    assert_eq!(fs::read(f.at("etc/x")).unwrap(), b"inside");
    // Missing parents are created 0755.
    assert_eq!(lmeta(&f.at("etc")).mode() & 0o7777, 0o755);
}

#[test]
fn symlink_parent_pointing_outside_is_refused() {
    let f = Fixture::new();
    fs::create_dir(f.out("outside")).unwrap();
    let target = f.out("outside").to_string_lossy().into_owned();
    let tar = Tar::new()
        .symlink("link", &target)
        .file("link/file", b"x")
        .finish();
    let (entry, reason) = unsafe_entry(f.unpack(&tar));
    assert_eq!(entry, "link/file");
    assert!(
        reason.contains("would write through symlink link"),
        "{reason}"
    );
    assert!(!exists(&f.out("outside/file")));
}

#[test]
fn symlink_parent_pointing_inside_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new()
        .symlink("link", ".")
        .file("link/file", b"x")
        .finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(
        reason.contains("would write through symlink link"),
        "{reason}"
    );
    assert!(!exists(&f.at("file")));

    // Deeper, and via `..` resolved lexically onto the symlink.
    let f = Fixture::new();
    let tar = Tar::new()
        .dir("d", 0o755)
        .symlink("d/up", "..")
        .file("d/x/../up/y/file", b"x")
        .finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(
        reason.contains("would write through symlink d/up"),
        "{reason}"
    );
}

#[test]
fn file_parent_that_is_a_file_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new().file("a", b"x").file("a/b", b"y").finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(reason.contains("a is not a directory"), "{reason}");
}

#[test]
fn leaf_symlinks_are_replaced_not_followed() {
    let f = Fixture::new();
    fs::create_dir(f.out("outside")).unwrap();
    fs::write(f.out("outside/target"), b"orig").unwrap();
    fs::set_permissions(f.out("outside"), fs::Permissions::from_mode(0o711)).unwrap();
    let file = f.out("outside/target").to_string_lossy().into_owned();
    let dir = f.out("outside").to_string_lossy().into_owned();
    let tar = Tar::new()
        .symlink("x", &file)
        .file("x", b"new")
        .symlink("d", &dir)
        .dir("d", 0o700)
        .symlink("n", &file)
        .hardlink("h", "x")
        .finish();
    f.unpack(&tar).unwrap();
    assert_eq!(fs::read(f.out("outside/target")).unwrap(), b"orig");
    assert_eq!(fs::read(f.at("x")).unwrap(), b"new");
    assert!(lmeta(&f.at("d")).is_dir());
    assert_eq!(lmeta(&f.out("outside")).mode() & 0o7777, 0o711);
    assert!(lmeta(&f.at("n")).file_type().is_symlink());
    assert_eq!(fs::read_link(f.at("n")).unwrap(), f.out("outside/target"));
}

#[test]
fn hardlink_to_a_host_path_is_refused() {
    let passwd_links = lmeta(Path::new("/etc/passwd")).nlink();
    for target in ["/etc/passwd", "etc/passwd", "../../etc/passwd"] {
        let f = Fixture::new();
        let tar = Tar::new().dir("etc", 0o755).hardlink("h", target).finish();
        let (entry, reason) = unsafe_entry(f.unpack(&tar));
        assert_eq!(entry, "h");
        assert!(reason.contains("hardlink target"), "{reason}");
        assert!(
            reason.contains("does not exist in the layer") || reason.contains("escapes"),
            "{reason}"
        );
        assert!(!exists(&f.at("h")));
    }
    // Through a symlink in the layer that points at the host's /etc.
    let f = Fixture::new();
    let tar = Tar::new()
        .symlink("etc", "/etc")
        .hardlink("h", "etc/passwd")
        .finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(
        reason.contains("would write through symlink etc"),
        "{reason}"
    );
    assert!(!exists(&f.at("h")));
    assert_eq!(lmeta(Path::new("/etc/passwd")).nlink(), passwd_links);
}

#[test]
fn hardlink_within_the_layer() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file("bin/busybox", b"elf")
        .hardlink("bin/sh", "/bin/busybox")
        .hardlink("usr/bin/env", "./bin/busybox")
        .finish();
    f.unpack(&tar).unwrap();
    let ino = lmeta(&f.at("bin/busybox")).ino();
    assert_eq!(lmeta(&f.at("bin/sh")).ino(), ino);
    assert_eq!(lmeta(&f.at("usr/bin/env")).ino(), ino);
    assert_eq!(lmeta(&f.at("bin/busybox")).nlink(), 3);

    // A hardlink to a directory is refused.
    let f = Fixture::new();
    let tar = Tar::new().dir("d", 0o755).hardlink("h", "d").finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(reason.contains("is a directory"), "{reason}");
}

#[test]
fn rewriting_a_hardlinked_name_leaves_the_other_link_alone() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file("a", b"orig")
        .hardlink("b", "a")
        .file("b", b"new")
        .finish();
    f.unpack(&tar).unwrap();
    assert_eq!(fs::read(f.at("a")).unwrap(), b"orig");
    assert_eq!(fs::read(f.at("b")).unwrap(), b"new");
    assert_ne!(lmeta(&f.at("a")).ino(), lmeta(&f.at("b")).ino());
}

#[test]
fn whiteouts_become_overlay_char_devices() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file("d/x", b"x")
        .file("d/sub/y", b"y")
        .file("d/.wh.x", b"")
        .file("d/.wh.sub", b"")
        .file(".wh.gone", b"")
        .finish();
    f.unpack(&tar).unwrap();
    for p in ["d/x", "d/sub", "gone"] {
        let m = lmeta(&f.at(p));
        assert!(m.file_type().is_char_device(), "{p}");
        assert_eq!(m.rdev(), 0, "{p}");
        assert_eq!(m.mode() & nix::libc::S_IFMT, nix::libc::S_IFCHR, "{p}");
    }
    assert!(!exists(&f.at("d/.wh.x")));
    assert!(!exists(&f.at(".wh.gone")));
}

#[test]
fn whiteouts_are_walked_like_anything_else() {
    let f = Fixture::new();
    let (_, reason) = unsafe_entry(f.unpack(&Tar::new().file("../.wh.evil", b"").finish()));
    assert!(reason.contains("escapes"), "{reason}");

    let f = Fixture::new();
    fs::create_dir(f.out("outside")).unwrap();
    fs::write(f.out("outside/victim"), b"v").unwrap();
    let dir = f.out("outside").to_string_lossy().into_owned();
    let tar = Tar::new()
        .symlink("link", &dir)
        .file("link/.wh.victim", b"")
        .finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(
        reason.contains("would write through symlink link"),
        "{reason}"
    );
    assert_eq!(fs::read(f.out("outside/victim")).unwrap(), b"v");

    let f = Fixture::new();
    fs::create_dir(f.out("outside")).unwrap();
    let dir = f.out("outside").to_string_lossy().into_owned();
    let tar = Tar::new()
        .symlink("link", &dir)
        .file("link/.wh..wh..opq", b"")
        .finish();
    unsafe_entry(f.unpack(&tar));
    assert_eq!(
        xattr::get(f.out("outside"), "trusted.overlay.opaque").unwrap(),
        None
    );
}

#[test]
fn opaque_directories_get_the_overlay_xattr() {
    let f = Fixture::new();
    let tar = Tar::new()
        .dir("d", 0o755)
        .file("d/keep", b"k")
        .file("d/.wh..wh..opq", b"")
        .file("missing/.wh..wh..opq", b"")
        .file("d/.wh..wh.plnk", b"")
        .finish();
    f.unpack(&tar).unwrap();
    for d in ["d", "missing"] {
        assert!(lmeta(&f.at(d)).is_dir());
        let v = xattr::get(f.at(d), "trusted.overlay.opaque").unwrap();
        assert_eq!(v.as_deref(), Some(&b"y"[..]), "{d}");
    }
    assert!(!exists(&f.at("d/.wh..wh..opq")));
    assert!(!exists(&f.at("d/.wh..wh.plnk")));
    assert!(exists(&f.at("d/keep")));
}

#[test]
fn modes_with_setuid_setgid_sticky_are_kept() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file_as(b"bin/su", b"elf", 0o4755, 0, 0)
        .file_as(b"bin/wall", b"elf", 0o2755, 0, 5)
        .dir("tmp", 0o1777)
        .dir("srv", 0o2775)
        .finish();
    f.unpack(&tar).unwrap();
    let su = lmeta(&f.at("bin/su"));
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert_eq!(su.uid(), 0);
    let wall = lmeta(&f.at("bin/wall"));
    assert_eq!(wall.mode() & 0o7777, 0o2755);
    assert_eq!(wall.gid(), 5);
    assert_eq!(lmeta(&f.at("tmp")).mode() & 0o7777, 0o1777);
    assert_eq!(lmeta(&f.at("srv")).mode() & 0o7777, 0o2775);
}

#[test]
fn setuid_survives_chown_to_another_user() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file_as(b"suid", b"elf", 0o6755, 1000, 1000)
        .finish();
    f.unpack(&tar).unwrap();
    let m = lmeta(&f.at("suid"));
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    assert_eq!(m.mode() & 0o7777, 0o6755);
}

#[test]
fn ownership_is_applied() {
    let f = Fixture::new();
    let mut t = Tar::new();
    t.file_as(b"home/u/f", b"x", 0o600, 1000, 1000);
    let mut d = header(b"home/u", EntryType::Directory, 0, 0o700);
    d.set_uid(1000);
    d.set_gid(1000);
    t.raw(d, b"");
    let mut l = header(b"home/u/l", EntryType::Symlink, 0, 0o777);
    set_link(&mut l, b"f");
    l.set_uid(1000);
    l.set_gid(1001);
    t.raw(l, b"");
    f.unpack(&t.finish()).unwrap();
    for (p, uid, gid) in [
        ("home/u/f", 1000, 1000),
        ("home/u", 1000, 1000),
        ("home/u/l", 1000, 1001),
    ] {
        let m = lmeta(&f.at(p));
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    assert!(lmeta(&f.at("home/u/l")).file_type().is_symlink());
    assert_eq!(lmeta(&f.at("home/u/f")).mode() & 0o7777, 0o600);
}

#[test]
fn file_replaced_by_dir_and_dir_by_file() {
    let f = Fixture::new();
    let tar = Tar::new()
        .file("a", b"file")
        .dir("a", 0o750)
        .file("a/inner", b"i")
        .dir("b", 0o755)
        .file("b/c/deep", b"d")
        .symlink("b/l", "/")
        .file("b", b"now a file")
        .finish();
    f.unpack(&tar).unwrap();
    assert!(lmeta(&f.at("a")).is_dir());
    assert_eq!(lmeta(&f.at("a")).mode() & 0o7777, 0o750);
    assert_eq!(fs::read(f.at("a/inner")).unwrap(), b"i");
    assert!(lmeta(&f.at("b")).is_file());
    assert_eq!(fs::read(f.at("b")).unwrap(), b"now a file");
}

#[test]
fn existing_dir_is_kept_and_updated() {
    let f = Fixture::new();
    let mut t = Tar::new();
    t.dir("d", 0o755).file("d/f", b"x");
    let mut again = header(b"d", EntryType::Directory, 0, 0o700);
    again.set_uid(1000);
    t.raw(again, b"");
    f.unpack(&t.finish()).unwrap();
    assert!(exists(&f.at("d/f")));
    let m = lmeta(&f.at("d"));
    assert_eq!(m.mode() & 0o7777, 0o700);
    assert_eq!(m.uid(), 1000);
}

#[test]
fn entry_count_bomb_stops_before_writing() {
    let f = Fixture::new();
    let mut t = Tar::new();
    for i in 0..11 {
        t.file(&format!("f{i}"), b"x");
    }
    let limits = Limits {
        max_entries: 10,
        max_bytes: 1 << 20,
    };
    match unpack_layer(&t.finish()[..], &f.layer, &limits) {
        Err(Error::Limit { what, limit, knob }) => {
            assert_eq!(what, "layer entry count");
            assert_eq!(limit, 10);
            assert_eq!(knob, "max-layer-entries");
        }
        other => panic!("{other:?}"),
    }
    assert!(exists(&f.at("f9")));
    assert!(!exists(&f.at("f10")));
}

#[test]
fn size_bomb_stops_on_the_header() {
    let limits = Limits {
        max_entries: 100,
        max_bytes: 1 << 20,
    };
    // The header claims 2 MiB; the data isn't even there.
    let f = Fixture::new();
    let mut h = header(b"bomb", EntryType::Regular, 2 << 20, 0o644);
    h.set_cksum();
    let stream = h.as_bytes().to_vec();
    match unpack_layer(&stream[..], &f.layer, &limits) {
        Err(Error::Limit { what, knob, limit }) => {
            assert_eq!(what, "layer size");
            assert_eq!(knob, "max-layer-size");
            assert_eq!(limit, 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    assert!(!exists(&f.at("bomb")));

    // Cumulative: two files of 600 KiB.
    let f = Fixture::new();
    let big = vec![0u8; 600 << 10];
    let tar = Tar::new().file("a", &big).file("b", &big).finish();
    let e = unpack_layer(&tar[..], &f.layer, &limits).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Limit {
                knob: "max-layer-size",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(exists(&f.at("a")));
    assert!(!exists(&f.at("b")));
}

#[test]
fn oversized_tar_headers_are_refused() {
    let f = Fixture::new();
    let h = header(b"PaxHeaders/x", EntryType::XHeader, 17 << 20, 0o644);
    let tar = Tar::new()
        .raw(h, &vec![b'a'; 17 << 20])
        .file("f", b"x")
        .finish();
    let e = f.unpack(&tar).unwrap_err().to_string();
    assert!(e.contains("exceed 16 MiB"), "{e}");
    assert!(!exists(&f.at("f")));
}

#[test]
fn compressed_round_trips() {
    let tar = Tar::new()
        .dir("etc", 0o755)
        .file("etc/hostname", b"barge\n")
        .finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (blob, want) in [
        (gz, Compression::Gzip),
        (zst, Compression::Zstd),
        (tar.clone(), Compression::None),
    ] {
        let f = Fixture::new();
        let c = Compression::sniff(&blob);
        assert_eq!(c, want);
        let stats = unpack_layer(
            decompress(&blob[..], c).unwrap(),
            &f.layer,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(stats.entries, 2);
        assert_eq!(stats.bytes, 6);
        assert_eq!(fs::read(f.at("etc/hostname")).unwrap(), b"barge\n");
    }
}

#[test]
fn long_names_pax_and_gnu() {
    let f = Fixture::new();
    let long_pax = format!("{}/{}", "p".repeat(120), "file-with-a-long-name");
    let long_gnu = format!("{}/{}", "g".repeat(150), "gnu-file");
    let mut t = Tar::new();
    t.pax(&[("path", long_pax.as_bytes())]);
    t.raw(header(b"truncated", EntryType::Regular, 3, 0o644), b"pax");
    // Left blank by this builder (uid, gid, mtime): read as 0, as Go's archive/tar does.
    let mut h = Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    t.0.append_data(&mut h, &long_gnu, &b"gnu"[..]).unwrap();
    f.unpack(&t.finish()).unwrap();
    assert_eq!(fs::read(f.at(&long_pax)).unwrap(), b"pax");
    assert_eq!(fs::read(f.at(&long_gnu)).unwrap(), b"gnu");
    assert!(!exists(&f.at("truncated")));
}

#[test]
fn non_utf8_names_work_and_nul_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    let tar = Tar::new().file_as(b"caf\xe9", b"x", 0o644, 0, 0).finish();
    f.unpack(&tar).unwrap();
    assert!(exists(
        &f.layer.join(std::ffi::OsStr::from_bytes(b"caf\xe9"))
    ));

    let f = Fixture::new();
    let mut t = Tar::new();
    t.pax(&[("path", b"a\0b")]);
    t.raw(header(b"x", EntryType::Regular, 0, 0o644), b"");
    let (_, reason) = unsafe_entry(f.unpack(&t.finish()));
    assert!(reason.contains("NUL"), "{reason}");
    assert!(!exists(&f.at("a")));
    assert!(!exists(&f.at("x")));
}

#[test]
fn unsupported_types_are_refused_by_name() {
    for ty in [b'S', b'Z', b'V'] {
        let f = Fixture::new();
        let mut h = header(b"odd", EntryType::new(ty), 0, 0o644);
        h.as_gnu_mut().unwrap().realsize = *b"00000000000\0";
        let tar = Tar::new().raw(h, b"").finish();
        let e = f.unpack(&tar).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("odd"), "{msg}");
        assert!(!exists(&f.at("odd")));
    }
}

#[test]
fn device_nodes_and_fifos() {
    let f = Fixture::new();
    let mut null = header(b"dev/null", EntryType::Char, 0, 0o666);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    let mut sda = header(b"dev/sda", EntryType::Block, 0, 0o660);
    sda.set_device_major(8).unwrap();
    sda.set_device_minor(0).unwrap();
    sda.set_gid(6);
    let tar = Tar::new()
        .raw(null, b"")
        .raw(sda, b"")
        .raw(header(b"run/fifo", EntryType::Fifo, 0, 0o620), b"")
        .finish();
    f.unpack(&tar).unwrap();
    let m = lmeta(&f.at("dev/null"));
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(m.mode() & 0o7777, 0o666);
    assert_eq!(m.mtime(), MTIME as i64);
    let m = lmeta(&f.at("dev/sda"));
    assert!(m.file_type().is_block_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(8, 0));
    assert_eq!(m.gid(), 6);
    let m = lmeta(&f.at("run/fifo"));
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o620);
}

#[test]
fn pax_xattrs_are_applied_by_policy() {
    // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW.
    let mut cap = Vec::new();
    cap.extend(0x0200_0001u32.to_le_bytes());
    cap.extend((1u32 << 13).to_le_bytes());
    cap.extend([0u8; 12]);
    let f = Fixture::new();
    let mut t = Tar::new();
    t.pax(&[
        ("SCHILY.xattr.user.note", b"hello"),
        ("SCHILY.xattr.security.capability", &cap),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.trusted.barge", b"t"),
    ]);
    // Owned by someone else: the chown must come before the capability, which it would clear.
    t.file_as(b"bin/ping", b"elf", 0o755, 1000, 1000);
    t.pax(&[("SCHILY.xattr.user.dir", b"d")]);
    t.dir("etc", 0o755);
    f.unpack(&t.finish()).unwrap();
    let ping = f.at("bin/ping");
    assert_eq!(
        xattr::get(&ping, "user.note").unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(xattr::get(&ping, "security.capability").unwrap(), Some(cap));
    assert_eq!(
        xattr::get(&ping, "trusted.barge").unwrap().as_deref(),
        Some(&b"t"[..])
    );
    assert_eq!(xattr::get(&ping, "trusted.overlay.redirect").unwrap(), None);
    assert_eq!(lmeta(&ping).uid(), 1000);
    assert_eq!(
        xattr::get(f.at("etc"), "user.dir").unwrap().as_deref(),
        Some(&b"d"[..])
    );
}

#[test]
fn mtimes_of_files_and_dirs() {
    let f = Fixture::new();
    let mut t = Tar::new();
    let mut d = header(b"d", EntryType::Directory, 0, 0o755);
    d.set_mtime(1_000_000_000);
    t.raw(d, b"");
    let mut fh = header(b"d/f", EntryType::Regular, 1, 0o644);
    fh.set_mtime(1_100_000_000);
    t.raw(fh, b"x");
    t.file("d/sub/g", b"y");
    let mut sub = header(b"d/sub", EntryType::Directory, 0, 0o755);
    sub.set_mtime(1_200_000_000);
    t.raw(sub, b"");
    t.file("d/sub/h", b"z");
    t.pax(&[("mtime", b"1300000000.25")]);
    t.file("d/precise", b"p");
    let mut root = header(b"./", EntryType::Directory, 0, 0o755);
    root.set_mtime(1_400_000_000);
    t.raw(root, b"");
    t.file("late", b"");
    f.unpack(&t.finish()).unwrap();
    assert_eq!(lmeta(&f.at("d")).mtime(), 1_000_000_000);
    assert_eq!(lmeta(&f.at("d/f")).mtime(), 1_100_000_000);
    assert_eq!(lmeta(&f.at("d/sub")).mtime(), 1_200_000_000);
    let p = lmeta(&f.at("d/precise"));
    assert_eq!((p.mtime(), p.mtime_nsec()), (1_300_000_000, 250_000_000));
    assert_eq!(lmeta(&f.layer).mtime(), 1_400_000_000);
    assert_eq!(lmeta(&f.at("late")).mtime(), MTIME as i64);
}

#[test]
fn root_entry_must_be_a_directory() {
    let f = Fixture::new();
    let (_, reason) = unsafe_entry(f.unpack(&Tar::new().file("./", b"").finish()));
    assert!(reason.contains("layer directory itself"), "{reason}");
    let f = Fixture::new();
    let (_, reason) = unsafe_entry(f.unpack(&Tar::new().file("a/..", b"").finish()));
    assert!(reason.contains("layer directory itself"), "{reason}");
}

#[test]
fn empty_name_is_refused() {
    let f = Fixture::new();
    let tar = Tar::new()
        .raw(header(b"", EntryType::Regular, 0, 0o644), b"")
        .finish();
    let (_, reason) = unsafe_entry(f.unpack(&tar));
    assert!(reason.contains("empty name"), "{reason}");
}

/// Counts the bytes read through it.
struct Counting<R>(R, std::rc::Rc<std::cell::Cell<u64>>);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.set(self.1.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn the_stream_is_read_to_its_end() {
    let f = Fixture::new();
    let mut stream = Tar::new().file("a", b"x").finish();
    stream.extend(vec![0u8; 10240]);
    stream.extend(b"trailing junk after the end-of-archive marker");
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let stats = unpack_layer(
        Counting(&stream[..], count.clone()),
        &f.layer,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(count.get(), stream.len() as u64);
    assert_eq!(stats.entries, 1);

    // Trailing data counts against the size limit.
    let f = Fixture::new();
    let limits = Limits {
        max_entries: 10,
        max_bytes: 4096,
    };
    let e = unpack_layer(&stream[..], &f.layer, &limits).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Limit {
                knob: "max-layer-size",
                ..
            }
        ),
        "{e:?}"
    );
}
