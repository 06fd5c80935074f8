//! Idmapped bind mounts (`mounts[].uidMappings` / `gidMappings`, `idmap` / `ridmap`), observed
//! from inside real containers and on the host (run as root).
//!
//! Direction, as the kernel, runc and crun have it: with `{containerID: C, hostID: H}` an id
//! `C` stored on disk shows through the mount as `H`, and `H` writing through it stores `C`.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::statfs::{self, FsType};

use barge_testutil::{host_mounts_containing, ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

fn cid(name: &str) -> String {
    format!("idmap-{name}-{}", std::process::id())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Filesystems whose mounts the kernel (6.3+) can idmap.
const IDMAP_FS: [(FsType, &str); 4] = [
    (statfs::EXT4_SUPER_MAGIC, "ext4"),
    (statfs::XFS_SUPER_MAGIC, "xfs"),
    (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
    (statfs::TMPFS_MAGIC, "tmpfs"),
];

/// A fresh host directory on a filesystem that supports idmapped mounts: under the target dir,
/// else /tmp, else /dev/shm.
fn host_dir() -> tempfile::TempDir {
    let candidates = [
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        PathBuf::from("/tmp"),
        PathBuf::from("/dev/shm"),
    ];
    let mut seen = Vec::new();
    for c in &candidates {
        let Ok(st) = statfs::statfs(c) else {
            continue;
        };
        let t = st.filesystem_type();
        if IDMAP_FS.iter().any(|(m, _)| m.0 == t.0) {
            return tempfile::Builder::new()
                .prefix("barge-idmap-")
                .tempdir_in(c)
                .expect("host dir");
        }
        seen.push(format!("{} ({:#x})", c.display(), t.0));
    }
    let names: Vec<&str> = IDMAP_FS.iter().map(|(_, n)| *n).collect();
    panic!("no directory on a filesystem supporting idmapped mounts ({names:?}); tried {seen:?}");
}

fn ids(mappings: &[(u32, u32, u32)]) -> Value {
    Value::Array(
        mappings
            .iter()
            .map(|(c, h, s)| json!({"containerID": c, "hostID": h, "size": s}))
            .collect(),
    )
}

/// A bind mount of `src` on `dest` with `options`, idmapped with `map` (uids and gids) if given.
fn bind(dest: &str, src: &Path, options: &[&str], map: Option<&[(u32, u32, u32)]>) -> Value {
    let mut m = json!({"destination": dest, "type": "bind", "source": src, "options": options});
    if let Some(map) = map {
        m["uidMappings"] = ids(map);
        m["gidMappings"] = ids(map);
    }
    m
}

fn add_mounts(b: &mut Bundle, mounts: Vec<Value>) {
    b.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .extend(mounts);
    b.write();
}

/// `path uid gid` lines from inside the container, as a map.
fn owners(out: &str) -> std::collections::HashMap<String, (u32, u32)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("stat ")?.split(' ');
            let (p, u, g) = (f.next()?, f.next()?, f.next()?);
            Some((p.to_string(), (u.parse().ok()?, g.parse().ok()?)))
        })
        .collect()
}

/// Mount options of `dest` in the container's mountinfo lines of `out`.
fn mount_opts(out: &str, dest: &str) -> String {
    out.lines()
        .filter(|l| l.starts_with("mi "))
        .find(|l| l.split(' ').nth(5) == Some(dest))
        .and_then(|l| l.split(' ').nth(6))
        .unwrap_or_else(|| panic!("{dest} not mounted:\n{out}"))
        .to_string()
}

/// Wait until no process mentions `needle` on its command line (the init and its helpers carry
/// the runtime's `--root`).
fn procs_mentioning(needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<String> = fs::read_dir("/proc")
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let cmd = fs::read(e.path().join("cmdline")).ok()?;
                        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                        cmd.contains(needle)
                            .then(|| format!("{}: {cmd}", e.file_name().to_string_lossy()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A host tmpfs mounted under `at` for the test's duration (a submount for rbind/ridmap).
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: PathBuf) -> Self {
        fs::create_dir_all(&at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=755"),
        )
        .expect("mount tmpfs submount");
        HostMount(at)
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The ownership fixture: `dir` itself (0755) and `user` owned by 1000:1000, `root` by 0:0,
/// and `open`, a root-owned 0777 directory anyone may create files in.
fn populate(dir: &Path) {
    chown(dir, Some(1000), Some(1000)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(dir.join("open")).unwrap();
    fs::set_permissions(dir.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(dir.join("user"), "u").unwrap();
    chown(dir.join("user"), Some(1000), Some(1000)).unwrap();
    fs::write(dir.join("root"), "r").unwrap();
    chown(dir.join("root"), Some(0), Some(0)).unwrap();
}

#[test]
fn idmapped_bind_mounts_map_ownership_both_ways() {
    let host = host_dir();
    let d = host.path();
    populate(d);
    // Disk 1000 <-> 0 in the mount: the host user's files are root's inside.
    let to_root: &[(u32, u32, u32)] = &[(1000, 0, 1)];
    // runc's own example direction: disk 0 shows as 1000, disk 1000 is unmapped.
    let from_root: &[(u32, u32, u32)] = &[(0, 1000, 1)];
    let mut b = Bundle::sh(
        "for f in /mnt/*/user /mnt/*/root; do echo stat $(stat -c '%n %u %g' $f); done; \
         touch /mnt/to-root/made-inside && echo stat $(stat -c '%n %u %g' /mnt/to-root/made-inside); \
         touch /mnt/from-root/open/made-inside 2>&1; touch /mnt/ro/open/made-inside 2>&1; \
         while read -r l; do echo mi $l; done < /proc/self/mountinfo",
    );
    add_mounts(
        &mut b,
        vec![
            bind("/mnt/to-root", d, &["bind"], Some(to_root)),
            bind("/mnt/from-root", d, &["rbind", "idmap"], Some(from_root)),
            bind("/mnt/ro", d, &["bind", "ro", "nosuid"], Some(to_root)),
            bind("/mnt/plain", d, &["bind"], None),
        ],
    );
    let r = rt();
    let out = ok(&r.run(&b, &cid("both-ways")));
    assert!(r.leftovers().is_empty(), "state left: {:?}", r.leftovers());
    let o = owners(&out);
    let want = [
        ("/mnt/to-root/user", (0, 0)),
        ("/mnt/to-root/root", (65534, 65534)),
        ("/mnt/from-root/user", (65534, 65534)),
        ("/mnt/from-root/root", (1000, 1000)),
        ("/mnt/ro/user", (0, 0)),
        // The control: the same directory without mappings.
        ("/mnt/plain/user", (1000, 1000)),
        ("/mnt/plain/root", (0, 0)),
        // Created by root through the mount...
        ("/mnt/to-root/made-inside", (0, 0)),
    ];
    for (p, ids) in want {
        assert_eq!(o.get(p), Some(&ids), "{p}:\n{out}");
    }
    // ... and stored as 1000 on the host.
    let made = fs::metadata(d.join("made-inside")).expect("file made inside");
    assert_eq!((made.uid(), made.gid()), (1000, 1000));
    // Root is unmapped in from-root (EOVERFLOW even where anyone may write), and ro still
    // applies to an idmapped mount.
    assert!(
        out.contains("/mnt/from-root/open/made-inside: Value too large"),
        "{out}"
    );
    assert!(
        out.contains("/mnt/ro/open/made-inside: Read-only file system"),
        "{out}"
    );
    assert_eq!(fs::read_dir(d.join("open")).unwrap().count(), 0);
    for dest in ["/mnt/to-root", "/mnt/from-root", "/mnt/ro"] {
        assert!(
            mount_opts(&out, dest).contains("idmapped"),
            "{dest}: {}",
            mount_opts(&out, dest)
        );
    }
    let ro = mount_opts(&out, "/mnt/ro");
    assert!(ro.starts_with("ro,") && ro.contains("nosuid"), "{ro}");
    assert!(!mount_opts(&out, "/mnt/plain").contains("idmapped"));
    // Nothing leaked onto the host.
    assert!(host_mounts_containing(&path_str(b.path())).is_empty());
    assert!(host_mounts_containing(&path_str(d)).is_empty());
}

/// `idmap` maps only the top mount of an rbind; `ridmap` maps the whole tree.
#[test]
fn ridmap_maps_submounts_idmap_does_not() {
    let host = host_dir();
    let d = host.path();
    populate(d);
    let sub = HostMount::tmpfs(d.join("sub"));
    populate(&sub.0);
    let map: &[(u32, u32, u32)] = &[(1000, 0, 1)];
    let mut b = Bundle::sh(
        "for f in /mnt/*/user /mnt/*/sub/user; do echo stat $(stat -c '%n %u %g' $f); done",
    );
    add_mounts(
        &mut b,
        vec![
            bind("/mnt/top", d, &["rbind", "idmap"], Some(map)),
            bind("/mnt/all", d, &["rbind", "ridmap"], Some(map)),
        ],
    );
    let r = rt();
    let out = ok(&r.run(&b, &cid("ridmap")));
    assert!(r.leftovers().is_empty(), "state left: {:?}", r.leftovers());
    let o = owners(&out);
    for (p, ids) in [
        ("/mnt/top/user", (0, 0)),
        ("/mnt/top/sub/user", (1000, 1000)),
        ("/mnt/all/user", (0, 0)),
        ("/mnt/all/sub/user", (0, 0)),
    ] {
        assert_eq!(o.get(p), Some(&ids), "{p}:\n{out}");
    }
    let leaked = host_mounts_containing(&path_str(d));
    assert_eq!(leaked.len(), 1, "only the test's own tmpfs: {leaked:#?}");
    drop(sub);
    assert!(host_mounts_containing(&path_str(d)).is_empty());
}

/// A file (not a directory) can be an idmapped bind mount too.
#[test]
fn idmapped_file_bind() {
    let host = host_dir();
    populate(host.path());
    let mut b = Bundle::sh("echo stat $(stat -c '%n %u %g' /etc/idmapped)");
    add_mounts(
        &mut b,
        vec![bind(
            "/etc/idmapped",
            &host.path().join("user"),
            &["bind", "ro"],
            Some(&[(1000, 0, 1)]),
        )],
    );
    let r = rt();
    let out = ok(&r.run(&b, &cid("file")));
    assert_eq!(owners(&out).get("/etc/idmapped"), Some(&(0, 0)), "{out}");
}

/// The target is resolved inside the rootfs and the idmapped mount is moved onto that fd: a
/// symlink in the rootfs pointing at a host directory cannot redirect it onto the host.
#[test]
fn idmapped_mount_target_cannot_escape_the_rootfs() {
    let host = host_dir();
    populate(host.path());
    let outside = tempfile::tempdir().unwrap();
    let mut b = Bundle::sh("echo stat $(stat -c '%n %u %g' /escape/sub/user)");
    let rootfs = b.own_rootfs();
    std::os::unix::fs::symlink(outside.path(), rootfs.join("escape")).unwrap();
    add_mounts(
        &mut b,
        vec![bind(
            "/escape/sub",
            host.path(),
            &["bind"],
            Some(&[(1000, 0, 1)]),
        )],
    );
    let r = rt();
    let out = ok(&r.run(&b, &cid("escape")));
    assert_eq!(owners(&out).get("/escape/sub/user"), Some(&(0, 0)), "{out}");
    assert!(
        !outside.path().join("sub").exists(),
        "mount target was created outside the rootfs"
    );
    let inside = rootfs
        .join(outside.path().strip_prefix("/").unwrap())
        .join("sub");
    assert!(inside.is_dir(), "target not created inside the rootfs");
    assert!(host_mounts_containing(&path_str(outside.path())).is_empty());
    assert!(host_mounts_containing(&path_str(host.path())).is_empty());
}

/// `create` fails naming the mount and the reason, and leaves no state, mount or process.
#[track_caller]
fn refused(b: &Bundle, name: &str, needles: &[&str], host: &Path) {
    let r = rt();
    let id = cid(name);
    let out = r.exec(&["create", "--bundle", &path_str(b.path()), &id]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{name}: create succeeded: {}",
        stdout(&out)
    );
    for n in needles {
        assert!(err.contains(n), "{name}: {n:?} not in: {err}");
    }
    assert!(
        r.leftovers().is_empty(),
        "{name}: state left: {:?}",
        r.leftovers()
    );
    for p in [b.path(), host] {
        let m = host_mounts_containing(&path_str(p));
        assert!(m.is_empty(), "{name}: host mounts left: {m:#?}");
    }
    let procs = procs_mentioning(&path_str(r.root()));
    assert!(procs.is_empty(), "{name}: processes left: {procs:#?}");
}

#[test]
fn bad_idmap_input_is_refused_cleanly() {
    let host = host_dir();
    let d = host.path();
    populate(d);
    let one: &[(u32, u32, u32)] = &[(0, 1000, 1)];

    let mut b = Bundle::new();
    let mut tmpfs = json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs"});
    tmpfs["uidMappings"] = ids(one);
    tmpfs["gidMappings"] = ids(one);
    add_mounts(&mut b, vec![tmpfs]);
    refused(
        &b,
        "nonbind",
        &["mount /mnt/t", "only supported for bind mounts"],
        d,
    );

    let mut b = Bundle::new();
    let mut zero = bind("/mnt/zero", d, &["bind"], Some(one));
    zero["uidMappings"] = ids(&[(0, 1000, 0)]);
    add_mounts(&mut b, vec![zero]);
    refused(
        &b,
        "size0",
        &["mount /mnt/zero", "uidMappings", "size 0"],
        d,
    );

    let mut b = Bundle::new();
    let mut half = bind("/mnt/half", d, &["bind"], Some(one));
    half.as_object_mut().unwrap().remove("gidMappings");
    add_mounts(&mut b, vec![half]);
    refused(&b, "half", &["mount /mnt/half", "gidMappings"], d);

    // `idmap` alone takes the container's user namespace mappings; there is none.
    let mut b = Bundle::new();
    add_mounts(&mut b, vec![bind("/mnt/opt", d, &["bind", "idmap"], None)]);
    refused(&b, "noopt", &["mount /mnt/opt", "no user namespace"], d);

    // The kernel refuses to idmap a filesystem without support (procfs): its errno is shown.
    let mut b = Bundle::new();
    add_mounts(
        &mut b,
        vec![bind(
            "/mnt/proc",
            Path::new("/proc/sys"),
            &["rbind"],
            Some(one),
        )],
    );
    refused(
        &b,
        "procfs",
        &["mount /mnt/proc", "MOUNT_ATTR_IDMAP", "proc", "EINVAL"],
        d,
    );

    // Nothing was created in the source directory by any of them.
    assert_eq!(fs::read_dir(d).unwrap().count(), 3);
}

/// In a container with its own user namespace (0 -> host 100000) the runtime makes the
/// idmapped clone before fork (the init is not privileged over the host filesystem) and the
/// init moves it in: a host file owned by 1000, shown as host 100000 through the mount, is the
/// container's root's; without the mapping it is unmapped (65534).
#[test]
fn idmapped_mount_in_a_container_with_a_user_namespace() {
    let host = host_dir();
    let d = host.path();
    populate(d);
    let mut b = Bundle::sh(
        "echo $(stat -c '%u' /mnt/mapped/user) $(stat -c '%u' /mnt/plain/user); \
         touch /mnt/mapped/made-in-userns && echo made",
    );
    // Mapped root can't create mount points in a rootfs owned by host root: make them.
    let rootfs = b.own_rootfs();
    for m in ["mnt/mapped", "mnt/plain"] {
        fs::create_dir_all(rootfs.join(m)).unwrap();
    }
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = ids(&[(0, 100000, 65536)]);
    b.config["linux"]["gidMappings"] = ids(&[(0, 100000, 65536)]);
    add_mounts(
        &mut b,
        vec![
            bind("/mnt/mapped", d, &["bind"], Some(&[(1000, 100000, 1)])),
            bind("/mnt/plain", d, &["bind"], None),
        ],
    );
    let r = rt();
    let out = ok(&r.run(&b, &cid("userns")));
    assert_eq!(out, "0 65534\nmade\n", "{out}");
    let made = fs::metadata(d.join("made-in-userns")).expect("file made in the userns");
    assert_eq!(made.uid(), 1000, "stored as the mapped disk id");
    assert!(r.leftovers().is_empty(), "{:?}", r.leftovers());
    assert!(host_mounts_containing(&path_str(d)).is_empty());
}

#[test]
fn features_advertise_idmap() {
    let v: Value = serde_json::from_str(&ok(&rt().exec(&["features"]))).unwrap();
    assert_eq!(
        v["linux"]["mountExtensions"],
        json!({"idmap": {"enabled": true}})
    );
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        opts.contains(&"idmap") && opts.contains(&"ridmap"),
        "{opts:?}"
    );
}
