use super::*;
use std::os::unix::fs::symlink;

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// A tar built header by header, so that names the `tar` crate's builder refuses (`..`,
/// absolute) can be written.
struct RawTar(tar::Builder<Vec<u8>>);

impl RawTar {
    fn new() -> RawTar {
        RawTar(tar::Builder::new(Vec::new()))
    }

    fn add(&mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_old();
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.add(name, tar::EntryType::Regular, "", data.as_bytes())
    }

    fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

fn limits(parent: &Path) -> TarLimits {
    TarLimits {
        temp_parent: Some(parent.to_path_buf()),
        ..TarLimits::default()
    }
}

#[test]
fn walk_honours_dockerignore() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, ".dockerignore", "*.log\ntarget\ndocs\n!docs/keep.md\n");
    write(r, "src/main.c", "int main;");
    write(r, "a.log", "x");
    write(r, "target/out", "x");
    write(r, "docs/skip.md", "x");
    write(r, "docs/keep.md", "x");
    symlink("/etc", r.join("etc-link")).unwrap();
    let ctx = BuildContext::from_dir(r).unwrap();
    let rels: Vec<(String, EntryKind)> = ctx
        .walk()
        .unwrap()
        .into_iter()
        .map(|e| (e.rel, e.kind))
        .collect();
    assert_eq!(
        rels,
        [
            (".dockerignore".to_string(), EntryKind::File),
            ("docs/keep.md".to_string(), EntryKind::File),
            ("etc-link".to_string(), EntryKind::Symlink),
            ("src".to_string(), EntryKind::Dir),
            ("src/main.c".to_string(), EntryKind::File),
        ]
    );
}

#[test]
fn resolve_stays_inside() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "dir/file", "x");
    symlink("dir", r.join("in")).unwrap();
    symlink("../../..", r.join("dir/up")).unwrap();
    symlink("/", r.join("root")).unwrap();
    let ctx = BuildContext::from_dir(r).unwrap();
    let root = ctx.root().to_path_buf();
    assert_eq!(ctx.resolve("dir/file").unwrap(), root.join("dir/file"));
    assert_eq!(ctx.resolve("/dir/./file").unwrap(), root.join("dir/file"));
    assert_eq!(ctx.resolve("in/file").unwrap(), root.join("dir/file"));
    assert_eq!(
        ctx.resolve("dir/../in/file").unwrap(),
        root.join("dir/file")
    );
    assert_eq!(ctx.resolve("missing/x").unwrap(), root.join("missing/x"));
    assert_eq!(ctx.resolve(".").unwrap(), root);
    for (src, what) in [
        ("../x", "`..` goes above"),
        ("/../etc/passwd", "`..` goes above"),
        ("dir/../../x", "`..` goes above"),
        ("root/etc/passwd", "symlink to /"),
        ("root", "symlink to /"),
        ("dir/up/etc", "out of the context"),
        ("in/up", "out of the context"),
    ] {
        let e = ctx.resolve(src).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&format!("{src:?}")), "{src}: {msg}");
        assert!(msg.contains(what), "{src}: {msg}");
    }
}

#[test]
fn content_hash() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, ".dockerignore", "app/ignored\n");
    write(r, "app/a", "one");
    write(r, "app/b", "two");
    write(r, "app/ignored", "x");
    let ctx = BuildContext::from_dir(r).unwrap();
    let h0 = ctx.hash_paths(&["app"]).unwrap();
    assert!(h0.starts_with("sha256:") && h0.len() == 71, "{h0}");
    assert_eq!(ctx.hash_paths(&["./app/"]).unwrap(), h0);
    // mtimes do not count; ignored files do not count.
    fs::File::options()
        .write(true)
        .open(r.join("app/a"))
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    write(r, "app/ignored", "changed");
    assert_eq!(ctx.hash_paths(&["app"]).unwrap(), h0);
    // Content, mode, names and link targets do.
    write(r, "app/b", "TWO");
    let h1 = ctx.hash_paths(&["app"]).unwrap();
    assert_ne!(h1, h0);
    fs::set_permissions(r.join("app/b"), fs::Permissions::from_mode(0o755)).unwrap();
    let h2 = ctx.hash_paths(&["app"]).unwrap();
    assert_ne!(h2, h1);
    symlink("a", r.join("app/l")).unwrap();
    let h3 = ctx.hash_paths(&["app"]).unwrap();
    assert_ne!(h3, h2);
    fs::remove_file(r.join("app/l")).unwrap();
    symlink("b", r.join("app/l")).unwrap();
    assert_ne!(ctx.hash_paths(&["app"]).unwrap(), h3);
    assert_ne!(
        ctx.hash_paths(&["app/a"]).unwrap(),
        ctx.hash_paths(&["app/b"]).unwrap()
    );
    assert!(ctx.hash_paths(&["../x"]).is_err());
    assert!(ctx.hash_paths(&["nope"]).is_err());
}

#[test]
fn tar_context_unpacks() {
    let parent = tempfile::tempdir().unwrap();
    let mut t = RawTar::new();
    t.add("./", tar::EntryType::Directory, "", b"")
        .add("./src/", tar::EntryType::Directory, "", b"")
        .file("./src/a.c", "int a;")
        .file(".dockerignore", "*.tmp\n")
        .file("x.tmp", "x")
        .add("src/link", tar::EntryType::Symlink, "a.c", b"")
        .add("hard", tar::EntryType::Link, "src/a.c", b"");
    let tar = t.bytes();
    let ctx = BuildContext::from_tar(&tar[..], &limits(parent.path())).unwrap();
    let root = ctx.root().to_path_buf();
    assert!(root.starts_with(fs::canonicalize(parent.path()).unwrap()));
    assert_eq!(fs::read_to_string(root.join("src/a.c")).unwrap(), "int a;");
    assert_eq!(fs::read_to_string(root.join("hard")).unwrap(), "int a;");
    assert_eq!(
        fs::read_link(root.join("src/link")).unwrap(),
        Path::new("a.c")
    );
    let rels: Vec<String> = ctx.walk().unwrap().into_iter().map(|e| e.rel).collect();
    assert_eq!(
        rels,
        [".dockerignore", "hard", "src", "src/a.c", "src/link"]
    );
    assert_eq!(ctx.resolve("src/link").unwrap(), root.join("src/a.c"));
    drop(ctx);
    assert!(!root.exists(), "the private temp dir goes with the context");
}

/// A gzip-compressed context (`docker build --compress`) is unpacked like a plain one; the
/// Dockerfile is read only from inside it.
#[test]
fn gzip_context_and_the_dockerfile_inside_it() {
    use std::io::Write;
    let parent = tempfile::tempdir().unwrap();
    let mut t = RawTar::new();
    t.file("sub/Dockerfile", "FROM scratch\n").add(
        "out",
        tar::EntryType::Symlink,
        "sub/../..",
        b"",
    );
    let tar = t.bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let e = BuildContext::from_tar(&gz[..], &limits(parent.path())).unwrap_err();
    assert!(e.to_string().contains("\"out\""), "{e}");
    let mut t = RawTar::new();
    t.file("sub/Dockerfile", "FROM scratch\n");
    let tar = t.bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let ctx = BuildContext::from_tar(&gz.finish().unwrap()[..], &limits(parent.path())).unwrap();
    use crate::builder::from_context::read_dockerfile;
    assert_eq!(
        read_dockerfile(&ctx, Some("sub/Dockerfile")).unwrap(),
        "FROM scratch\n"
    );
    let e = read_dockerfile(&ctx, Some("../../../etc/passwd")).unwrap_err();
    assert!(e.to_string().contains("outside the build context"), "{e}");
    let e = read_dockerfile(&ctx, None).unwrap_err();
    assert!(
        e.to_string().contains("no Dockerfile in the build context"),
        "{e}"
    );
}

#[test]
fn hostile_tars_are_refused_and_write_nothing_outside() {
    let parent = tempfile::tempdir().unwrap();
    let outside_name = format!("barge-hostile-{}", std::process::id());
    let abs_target = std::env::temp_dir().join(&outside_name);
    let abs_str = abs_target.to_str().unwrap().to_string();
    let through_link = format!("l/{}", abs_str.trim_start_matches('/'));
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (RawTar::new().file("../x", "evil").bytes(), "../x", "`..`"),
        (
            RawTar::new().file("a/../../x", "evil").bytes(),
            "a/../../x",
            "`..`",
        ),
        (
            RawTar::new().file(&abs_str, "evil").bytes(),
            &abs_str,
            "absolute",
        ),
        (
            RawTar::new()
                .add("l", tar::EntryType::Symlink, "/", b"")
                .file(&through_link, "evil")
                .bytes(),
            "l",
            "absolute path /",
        ),
        (
            RawTar::new()
                .add("d/l", tar::EntryType::Symlink, "../..", b"")
                .bytes(),
            "d/l",
            "leaves the context",
        ),
        (
            // A symlink inside, then a file written through it: refused too.
            RawTar::new()
                .add("real/", tar::EntryType::Directory, "", b"")
                .add("l", tar::EntryType::Symlink, "real", b"")
                .file("l/x", "x")
                .bytes(),
            "l/x",
            "through a symlink",
        ),
        (
            RawTar::new()
                .add("h", tar::EntryType::Link, "/etc/passwd", b"")
                .bytes(),
            "h",
            "absolute",
        ),
        (
            RawTar::new()
                .add("h", tar::EntryType::Link, "../x", b"")
                .bytes(),
            "h",
            "`..`",
        ),
        (
            RawTar::new()
                .add("h", tar::EntryType::Link, "nothing", b"")
                .bytes(),
            "h",
            "not a file unpacked before it",
        ),
        (
            RawTar::new()
                .add("null", tar::EntryType::Char, "", b"")
                .bytes(),
            "null",
            "device node",
        ),
        (
            RawTar::new()
                .add("sda", tar::EntryType::Block, "", b"")
                .bytes(),
            "sda",
            "device node",
        ),
        (
            RawTar::new()
                .add("p", tar::EntryType::Fifo, "", b"")
                .bytes(),
            "p",
            "FIFO",
        ),
    ];
    for (tar, entry, what) in cases {
        let e = BuildContext::from_tar(&tar[..], &limits(parent.path())).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&format!("{entry:?}")), "{entry}: {msg}");
        assert!(msg.contains(what), "{entry}: {msg}");
        assert_eq!(
            fs::read_dir(parent.path()).unwrap().count(),
            0,
            "{entry}: the temp dir is removed and nothing sits beside it"
        );
        assert!(!parent.path().join("x").exists());
        assert!(
            !abs_target.exists(),
            "{entry}: wrote {}",
            abs_target.display()
        );
    }
}

#[test]
fn tar_limits() {
    let parent = tempfile::tempdir().unwrap();
    let tar = RawTar::new().file("a", "12345").file("b", "67890").bytes();
    let small = TarLimits {
        max_total_bytes: 8,
        ..limits(parent.path())
    };
    let e = BuildContext::from_tar(&tar[..], &small).unwrap_err();
    assert!(
        e.to_string().contains("\"b\"") && e.to_string().contains("exceeds 8 bytes"),
        "{e}"
    );
    let few = TarLimits {
        max_entries: 1,
        ..limits(parent.path())
    };
    let e = BuildContext::from_tar(&tar[..], &few).unwrap_err();
    assert!(e.to_string().contains("more than 1 entries"), "{e}");
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    let garbage = vec![0x55u8; 1024];
    assert!(BuildContext::from_tar(&garbage[..], &limits(parent.path())).is_err());
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
}
