//! Idmapped bind mounts: `mounts[].uidMappings` / `gidMappings` and the `idmap` / `ridmap`
//! options, as runc 1.2 and crun do them.
//!
//! The mount's mappings are written verbatim ("containerID hostID size", as for
//! `linux.uidMappings`) into the maps of a throwaway user namespace, and that namespace's
//! idmapping is put on a detached clone of the source: `open_tree(OPEN_TREE_CLONE)`, then
//! `mount_setattr(MOUNT_ATTR_IDMAP)`, then `move_mount` onto the O_PATH fd of the target that
//! `Root` resolved inside the rootfs, so no path lookup can be redirected at the last step.
//!
//! Direction (the kernel's, runc's, and crun's since it switched to the direct mapping): an id
//! `containerID + n` stored on disk appears through the mount as `hostID + n`, and a file
//! created through the mount by `hostID + n` is stored as `containerID + n`. Ids outside the
//! mapping show up as the overflow id (65534) and cannot be written. In a container whose user
//! namespace has the same mappings the two cancel out: root-owned files look root-owned inside.
//!
//! Limit of this build: the mount is made by the container init, so the runtime must be root in
//! the initial user namespace and the container must not have a user namespace of its own (the
//! kernel only lets a process with CAP_SYS_ADMIN over the source filesystem's user namespace,
//! the host's, set an idmapping). runc covers that case by making the mount in the runtime
//! process and passing the fd to its init.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options::{Idmap, MountOptions};
use super::resolve::fd_path;
use crate::error::{Context, Error, Result};
use crate::sys;

/// One line of a map: ids `container..container+size` on disk are `host..host+size` through
/// the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl From<&LinuxIdMapping> for Range {
    fn from(m: &LinuxIdMapping) -> Self {
        Range {
            container: m.container_id(),
            host: m.host_id(),
            size: m.size(),
        }
    }
}

/// The idmapping one mount asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub uids: Vec<Range>,
    pub gids: Vec<Range>,
    /// `ridmap`: every mount of the (r)bind tree gets the mapping, not only the top one.
    pub recursive: bool,
}

/// Lines a uid_map/gid_map may have (the kernel's limit since Linux 4.15).
const MAX_RANGES: usize = 340;

/// What `m` asks for: `None` for a mount without mappings and without `idmap`/`ridmap`.
///
/// Refuses, naming the mount: mappings (or the options) on anything but a bind mount, only one
/// of uidMappings/gidMappings, empty, overlapping or overflowing ranges, and `idmap` without
/// mappings in a container without a user namespace to take them from.
pub fn request(m: &Mount, opts: &MountOptions, spec: &Spec) -> Result<Option<Request>> {
    let dest = m.destination();
    let own = |v: &Option<Vec<LinuxIdMapping>>| -> Vec<Range> {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .map(Range::from)
            .collect()
    };
    let (uids, gids) = (own(m.uid_mappings()), own(m.gid_mappings()));
    if uids.is_empty() && gids.is_empty() && opts.idmap.is_none() {
        return Ok(None);
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if !(opts.bind || typ == "bind") {
        return Err(Error::Config(format!(
            "mount {}: uidMappings/gidMappings and the idmap/ridmap options (idmapped mounts) \
             are only supported for bind mounts, not type {typ:?}",
            dest.display()
        )));
    }
    let (uids, gids, from) = if uids.is_empty() && gids.is_empty() {
        let (u, g) = container_mappings(spec).ok_or_else(|| {
            Error::Config(format!(
                "mount {}: the idmap/ridmap option without uidMappings/gidMappings on the mount \
                 takes the container's user namespace mappings, but the container has no user \
                 namespace with linux.uidMappings and linux.gidMappings",
                dest.display()
            ))
        })?;
        (u, g, "linux.")
    } else {
        (uids, gids, "")
    };
    check_ranges(dest, &format!("{from}uidMappings"), &uids)?;
    check_ranges(dest, &format!("{from}gidMappings"), &gids)?;
    Ok(Some(Request {
        uids,
        gids,
        recursive: opts.idmap == Some(Idmap::Recursive),
    }))
}

/// `linux.uidMappings` / `gidMappings` of a container that creates its own user namespace.
fn container_mappings(spec: &Spec) -> Option<(Vec<Range>, Vec<Range>)> {
    let linux = spec.linux().as_ref()?;
    let creates_userns = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if !creates_userns {
        return None;
    }
    let conv = |v: &Option<Vec<LinuxIdMapping>>| -> Vec<Range> {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .map(Range::from)
            .collect()
    };
    let (u, g) = (conv(linux.uid_mappings()), conv(linux.gid_mappings()));
    (!u.is_empty() && !g.is_empty()).then_some((u, g))
}

/// The checks the kernel makes when the map is written, made up front with a clear message.
fn check_ranges(dest: &Path, field: &str, ranges: &[Range]) -> Result<()> {
    let bad = |why: String| {
        Err(Error::Config(format!(
            "mount {}: {field}: {why}",
            dest.display()
        )))
    };
    if ranges.is_empty() {
        return bad("missing or empty (an idmapped mount needs both uid and gid mappings)".into());
    }
    if ranges.len() > MAX_RANGES {
        return bad(format!(
            "{} ranges, the kernel takes at most {MAX_RANGES}",
            ranges.len()
        ));
    }
    for (i, r) in ranges.iter().enumerate() {
        if r.size == 0 {
            return bad(format!("entry {i} has size 0"));
        }
        // The kernel refuses a range whose end wraps around u32 (and -1 is never a valid id).
        for (side, start) in [("containerID", r.container), ("hostID", r.host)] {
            if u64::from(start) + u64::from(r.size) > u64::from(u32::MAX) {
                return bad(format!(
                    "entry {i}: {side} {start} + size {} goes past the last id {}",
                    r.size,
                    u32::MAX - 1
                ));
            }
        }
    }
    for (side, start) in [
        (
            "containerID",
            (|r: &Range| r.container) as fn(&Range) -> u32,
        ),
        ("hostID", |r: &Range| r.host),
    ] {
        let mut sorted: Vec<(u64, u64)> = ranges
            .iter()
            .map(|r| (u64::from(start(r)), u64::from(start(r)) + u64::from(r.size)))
            .collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[1].0 < w[0].1) {
            return bad(format!(
                "{side} ranges overlap ({}..{} and {}..{})",
                w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    Ok(())
}

/// Idmapped clones of the sources of every idmapped mount in `spec` (indexed like
/// `spec.mounts`), made by the runtime before it forks: only a process privileged over the
/// source filesystem's user namespace (the host's) may set an idmapping, which a container
/// init in its own user namespace never is. The init moves them onto their targets
/// ([`attach`]). Bad mappings are refused here, naming the mount, before anything exists.
pub fn prepare_all(spec: &Spec, bundle: &Path) -> Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let opts = super::options::parse(m.options().as_deref().unwrap_or_default())?;
        let Some(req) = request(m, &opts, spec)? else {
            out.push(None);
            continue;
        };
        let dest = m.destination();
        can_idmap(dest)?;
        let src = super::mounts::bind_source(m, bundle)?;
        let rbind = opts.flags.contains(nix::mount::MsFlags::MS_REC);
        out.push(Some(clone_tree(&src, dest, rbind, &req)?));
    }
    Ok(out)
}

/// Idmapped mounts are made as root in the initial user namespace.
fn can_idmap(dest: &Path) -> Result<()> {
    if !nix::unistd::geteuid().is_root() || !in_initial_userns() {
        return Err(Error::Unsupported(format!(
            "mount {}: idmapped mounts need the runtime to run as root in the initial user \
             namespace",
            dest.display()
        )));
    }
    Ok(())
}

/// The initial user namespace maps every id to itself.
fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|s| s.split_whitespace().eq(["0", "0", "4294967295"]))
        .unwrap_or(false)
}

/// A detached clone of `src` (the whole tree under it with `rbind`) carrying the idmapping
/// `req`.
fn clone_tree(src: &Path, dest: &Path, rbind: bool, req: &Request) -> Result<OwnedFd> {
    let ns = userns_fd(req, dest)?;
    let mut flags = sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC;
    if rbind {
        flags |= sys::AT_RECURSIVE;
    }
    // Dropped without being moved (on any error below), the clone is dissolved.
    let tree = sys::open_tree(src, flags).ctx(|| {
        format!(
            "mount {}: clone {} with open_tree (Linux 5.2+)",
            dest.display(),
            src.display()
        )
    })?;
    let attr = sys::MountAttr {
        attr_set: sys::MOUNT_ATTR_IDMAP,
        userns_fd: ns.as_raw_fd() as u64,
        ..Default::default()
    };
    let set_flags = if req.recursive { sys::AT_RECURSIVE } else { 0 };
    if let Err(e) = sys::mount_setattr(tree.as_fd(), set_flags, &attr) {
        let why = match e {
            nix::errno::Errno::EINVAL => format!(
                ": most likely the {} filesystem of the source does not support idmapped mounts \
                 on this kernel",
                fs_name(src)
            ),
            nix::errno::Errno::ENOSYS => ": the kernel has no mount_setattr (Linux 5.12+)".into(),
            nix::errno::Errno::EPERM => ": needs CAP_SYS_ADMIN over the source filesystem".into(),
            _ => String::new(),
        };
        return Err(Error::Sys {
            context: format!(
                "mount {}: idmap {} (mount_setattr MOUNT_ATTR_IDMAP{why})",
                dest.display(),
                src.display()
            ),
            source: e,
        });
    }
    Ok(tree)
}

/// Move the idmapped clone `tree` of `src` onto `target` (the O_PATH fd of `dest` in the
/// rootfs).
pub fn attach(tree: &OwnedFd, target: &OwnedFd, dest: &Path, src: &Path) -> Result<()> {
    sys::move_mount(tree.as_fd(), target.as_fd()).ctx(|| {
        let tpath = fd_path(target);
        let shown = std::fs::read_link(&tpath).unwrap_or(tpath);
        format!(
            "mount {}: move the idmapped mount of {} onto {}",
            dest.display(),
            src.display(),
            shown.display()
        )
    })
}

/// Name of the filesystem `p` is on, for error messages.
fn fs_name(p: &Path) -> String {
    use nix::sys::statfs::{self, statfs};
    let Ok(st) = statfs(p) else {
        return "unknown".into();
    };
    let t = st.filesystem_type();
    let known = [
        (statfs::EXT4_SUPER_MAGIC, "ext2/3/4"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlay"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
        (statfs::FUSE_SUPER_MAGIC, "fuse"),
        (statfs::PROC_SUPER_MAGIC, "proc"),
        (statfs::SYSFS_MAGIC, "sysfs"),
    ];
    known
        .iter()
        .find(|(m, _)| m.0 == t.0)
        .map_or_else(|| format!("{:#x}", t.0), |(_, n)| n.to_string())
}

/// An fd of a new user namespace with `req`'s maps.
///
/// A forked helper unshares CLONE_NEWUSER and reports its pid as the mounted /proc sees it
/// (this process may be in a new pid namespace while /proc is still the host's); this process,
/// privileged in the parent namespace, writes the maps and opens the namespace, then kills and
/// reaps the helper. The namespace lives on through the fd.
fn userns_fd(req: &Request, dest: &Path) -> Result<OwnedFd> {
    let what = || format!("mount {}: user namespace for the idmapping", dest.display());
    let (report_r, report_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| format!("{}: pipe", what()))?;
    let (hold_r, hold_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| format!("{}: pipe", what()))?;
    match sys::fork().ctx(|| format!("{}: fork helper", what()))? {
        ForkResult::Child => {
            drop(report_r);
            drop(hold_w);
            helper(report_w, hold_r)
        }
        ForkResult::Parent { child } => {
            drop(report_w);
            drop(hold_r);
            let r = read_report(report_r).and_then(|pid| set_up(pid, req));
            drop(hold_w);
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            r.map_err(|e| match e {
                Error::Sys { context, source } => Error::Sys {
                    context: format!("{}: {context}", what()),
                    source,
                },
                Error::Io { context, source } => Error::Io {
                    context: format!("{}: {context}", what()),
                    source,
                },
                other => Error::Container(format!("{}: {other}", what())),
            })
        }
    }
}

/// The helper: unshare, report `pid <n>` (or `error ...`), wait for the parent to close
/// `hold`. Never returns.
fn helper(report: OwnedFd, hold: OwnedFd) -> ! {
    // If the parent dies first, so does the helper.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let msg = match sys::unshare(libc::CLONE_NEWUSER) {
        Err(e) => format!("error unshare(CLONE_NEWUSER): {e}"),
        Ok(()) => match std::fs::read_link("/proc/self") {
            Ok(p) => format!("pid {}", p.display()),
            Err(e) => format!("error readlink /proc/self: {e}"),
        },
    };
    let _ = File::from(report).write_all(msg.as_bytes());
    let mut byte = [0u8; 1];
    let _ = File::from(hold).read(&mut byte);
    sys::exit_now(0)
}

/// The helper's pid in the mounted /proc, from its report.
fn read_report(report: OwnedFd) -> Result<u32> {
    let mut text = String::new();
    File::from(report)
        .read_to_string(&mut text)
        .ctx(|| "read the helper's report".into())?;
    match text.strip_prefix("pid ").map(|p| p.trim().parse::<u32>()) {
        Some(Ok(pid)) => Ok(pid),
        _ if text.is_empty() => Err(Error::Container(
            "the helper exited without reporting".into(),
        )),
        _ => Err(Error::Container(format!("helper: {}", text.trim()))),
    }
}

/// Write the maps of the helper `pid`'s user namespace and open it.
fn set_up(pid: u32, req: &Request) -> Result<OwnedFd> {
    for (file, ranges) in [("uid_map", &req.uids), ("gid_map", &req.gids)] {
        let text = map_text(ranges);
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &text)
            .ctx(|| format!("write {path} ({})", text.trim().replace('\n', ", ")))?;
    }
    let path = format!("/proc/{pid}/ns/user");
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {path}"))
}

/// uid_map/gid_map text: one `containerID hostID size` line per range.
fn map_text(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::options::parse;

    fn spec(extra: serde_json::Value) -> Spec {
        let mut s = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}]}
        });
        if let (Some(s), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(s).unwrap()
    }

    fn mount(v: serde_json::Value) -> Mount {
        serde_json::from_value(v).unwrap()
    }

    fn req(m: &Mount, s: &Spec) -> Result<Option<Request>> {
        let opts = parse(m.options().as_deref().unwrap_or_default()).unwrap();
        request(m, &opts, s)
    }

    fn r(container: u32, host: u32, size: u32) -> Range {
        Range {
            container,
            host,
            size,
        }
    }

    #[test]
    fn plain_mounts_are_not_idmapped() {
        let s = spec(serde_json::json!({}));
        let m = mount(serde_json::json!({
            "destination": "/data", "source": "/srv", "options": ["rbind", "ro"]
        }));
        assert_eq!(req(&m, &s).unwrap(), None);
    }

    #[test]
    fn mount_mappings_are_taken_verbatim() {
        let s = spec(serde_json::json!({}));
        let m = mount(serde_json::json!({
            "destination": "/data", "source": "/srv", "options": ["rbind", "ridmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                            {"containerID": 1, "hostID": 100000, "size": 65535}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]
        }));
        let got = req(&m, &s).unwrap().unwrap();
        assert_eq!(got.uids, vec![r(0, 1000, 1), r(1, 100000, 65535)]);
        assert_eq!(got.gids, vec![r(0, 2000, 1)]);
        assert!(got.recursive);
        assert_eq!(map_text(&got.uids), "0 1000 1\n1 100000 65535\n");
        // `type: bind` without the option is a bind too; no option means not recursive.
        let m = mount(serde_json::json!({
            "destination": "/data", "type": "bind", "source": "/srv",
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
        }));
        assert!(!req(&m, &s).unwrap().unwrap().recursive);
    }

    #[test]
    fn idmap_option_takes_the_container_mappings() {
        let s = spec(serde_json::json!({"linux": {
            "namespaces": [{"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]
        }}));
        let m = mount(serde_json::json!({
            "destination": "/data", "source": "/srv", "options": ["bind", "idmap"]
        }));
        let got = req(&m, &s).unwrap().unwrap();
        assert_eq!(got.uids, vec![r(0, 100000, 65536)]);
        assert_eq!(got.gids, vec![r(0, 200000, 65536)]);
        assert!(!got.recursive);
        // Without a user namespace there is nothing to take.
        let e = req(&m, &spec(serde_json::json!({}))).unwrap_err();
        assert!(e.to_string().contains("mount /data:"), "{e}");
        assert!(e.to_string().contains("no user namespace"), "{e}");
    }

    #[test]
    fn bad_mappings_are_refused_naming_the_mount() {
        let s = spec(serde_json::json!({}));
        let one = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let cases = [
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                    "uidMappings": one, "gidMappings": one}),
                "only supported for bind mounts",
            ),
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                    "options": ["idmap"]}),
                "only supported for bind mounts",
            ),
            (
                serde_json::json!({"destination": "/t", "source": "/srv", "options": ["bind"],
                    "uidMappings": one}),
                "gidMappings: missing",
            ),
            (
                serde_json::json!({"destination": "/t", "source": "/srv", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}],
                    "gidMappings": one}),
                "uidMappings: entry 0 has size 0",
            ),
            (
                serde_json::json!({"destination": "/t", "source": "/srv", "options": ["bind"],
                    "uidMappings": one,
                    "gidMappings": [{"containerID": 0, "hostID": 4294967000u32, "size": 1000}]}),
                "gidMappings: entry 0: hostID",
            ),
            (
                serde_json::json!({"destination": "/t", "source": "/srv", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                    {"containerID": 5, "hostID": 5000, "size": 10}],
                    "gidMappings": one}),
                "containerID ranges overlap",
            ),
            (
                serde_json::json!({"destination": "/t", "source": "/srv", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                    {"containerID": 100, "hostID": 1009, "size": 1}],
                    "gidMappings": one}),
                "hostID ranges overlap",
            ),
        ];
        for (m, want) in cases {
            let e = req(&mount(m.clone()), &s).unwrap_err().to_string();
            assert!(e.contains("mount /t:"), "{m}: {e}");
            assert!(e.contains(want), "{m}: {e}");
        }
        // Ranges that touch but do not overlap, and the largest possible one, are fine.
        let ok = mount(serde_json::json!({"destination": "/t", "source": "/srv",
            "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 0, "size": 4294967295u32}],
            "gidMappings": [{"containerID": 0, "hostID": 10, "size": 10},
                            {"containerID": 10, "hostID": 0, "size": 10}]}));
        assert!(req(&ok, &s).unwrap().is_some());
    }

    #[test]
    fn prepare_all_refuses_before_mounting() {
        let s = spec(serde_json::json!({"mounts": [
            {"destination": "/ok", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/bad", "type": "proc", "source": "proc", "options": ["ridmap"]}
        ]}));
        let e = prepare_all(&s, Path::new("/")).unwrap_err().to_string();
        assert!(e.contains("mount /bad:"), "{e}");
    }
}
