//! Cgroups on v1, hybrid (v1 + unified) and v2 hosts.
//!
//! This module finds the hierarchies, computes the container's directory in each (relative
//! paths under the runtime's own cgroup), creates them with rollback, moves the init process
//! in, freezes and removes them. The [`Placement`] is the one interface the rest of the runtime
//! uses; [`Placement::dir_for`] picks the driver per controller: a v1 hierarchy when the host
//! has one for it, else the unified tree (v2 hosts, and v2-only controllers on hybrid hosts).
//!
//! - `resources`: validating and applying `linux.resources` (v1 files in `v1`, v2 in `v2`).
//! - `devices`: the device allow/deny list (v1 controller files; v2 eBPF program in `bpf`).
//! - `stats`: runc-compatible usage statistics; `oom`: OOM notifications.

mod bpf;
pub mod devices;
pub mod oom;
pub mod resources;
pub mod setup_oom;
pub mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{at, Context, Error, Result};

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 controller hierarchies.
    #[default]
    V1,
    /// v1 controllers plus a unified (v2) tree, usually at /sys/fs/cgroup/unified.
    Hybrid,
    /// The unified hierarchy only.
    V2,
}

/// One mounted cgroup hierarchy and where this process sits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// Controllers (v1) such as `cpu`, `cpuacct`, `name=systemd`; empty for the unified tree.
    pub controllers: Vec<String>,
    /// This process's cgroup, relative to the mount point (no leading '/').
    pub own: PathBuf,
}

impl Hierarchy {
    pub fn is_unified(&self) -> bool {
        self.controllers.is_empty()
    }
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// The container's cgroup directories, persisted in the container state.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Placement {
    pub mode: Mode,
    /// The container's directory in every hierarchy it was placed in.
    pub paths: Vec<PathBuf>,
    /// Directories this runtime created (parents first), removed again on delete.
    pub created: Vec<PathBuf>,
    /// The freezer directory (v1 freezer hierarchy or the unified directory on v2).
    pub freezer: Option<PathBuf>,
    /// The directory in the unified (v2) hierarchy, on hybrid and v2 hosts.
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// v1 controller name (`memory`, `cpu`, `name=systemd`, ...) → the container's directory.
    #[serde(default)]
    pub controllers: BTreeMap<String, PathBuf>,
    /// The highest unified-tree directory whose `cgroup.subtree_control` the runtime may write
    /// to deliver v2 controllers down to the container: its own cgroup for paths under it, the
    /// mount point for absolute paths outside it.
    #[serde(default)]
    pub delegate_from: Option<PathBuf>,
    /// Why the container has no cgroups at all (a non-root runtime that may not write the
    /// cgroup tree, and a config without limits); `None` when it was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Which interface files a controller directory speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    V1,
    V2,
}

/// Detect the cgroup layout and hierarchies from /proc/self/mountinfo and /proc/self/cgroup.
pub fn detect() -> Result<(Mode, Vec<Hierarchy>)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .ctx(|| "read /proc/self/mountinfo".to_string())?;
    let own = fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
    Ok(parse(&mountinfo, &own))
}

/// Pure parser behind [`detect`], unit-tested on captured files.
pub fn parse(mountinfo: &str, proc_cgroup: &str) -> (Mode, Vec<Hierarchy>) {
    let mut hierarchies = Vec::new();
    let mut root_is_v2 = false;
    let mut seen_v1 = false;
    for m in barge_util::mountinfo::parse(mountinfo) {
        let (mount_root, mount_point) = (&m.root, &m.mount_point);
        if !mount_point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let controllers: Vec<String> = match m.fstype.as_str() {
            "cgroup2" => {
                if mount_point == Path::new("/sys/fs/cgroup") {
                    root_is_v2 = true;
                }
                Vec::new()
            }
            "cgroup" => {
                seen_v1 = true;
                m.super_options
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro" | "clone_children" | "xattr" | "noprefix")
                            && !o.starts_with("release_agent=")
                    })
                    .map(str::to_string)
                    .collect()
            }
            _ => continue,
        };
        let own = own_path(proc_cgroup, &controllers);
        let Some(own) = own else { continue };
        let own = own
            .strip_prefix(mount_root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| PathBuf::new());
        let h = Hierarchy {
            mount_point: mount_point.clone(),
            controllers,
            own: strip_root(&own),
        };
        if !hierarchies.contains(&h) {
            hierarchies.push(h);
        }
    }
    let mode = if root_is_v2 {
        hierarchies.retain(|h| h.mount_point == Path::new("/sys/fs/cgroup"));
        Mode::V2
    } else if hierarchies.iter().any(Hierarchy::is_unified) && seen_v1 {
        Mode::Hybrid
    } else {
        Mode::V1
    };
    (mode, hierarchies)
}

/// This process's cgroup in the hierarchy with these controllers (empty = unified).
fn own_path(proc_cgroup: &str, controllers: &[String]) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut names: Vec<&str> = ctrl.split(',').filter(|s| !s.is_empty()).collect();
        let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
        names.sort_unstable();
        want.sort_unstable();
        if names == want {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn strip_root(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// The container's path relative to each hierarchy's root, from `linux.cgroupsPath`.
///
/// Absolute paths are honored as given; relative ones go under the runtime's own cgroup; a
/// missing one becomes `<own>/barge-<id>`. `..` is refused.
pub fn relative_path(cgroups_path: Option<&Path>, own: &Path, id: &str) -> Result<PathBuf> {
    let p = match cgroups_path {
        None => return Ok(own.join(format!("barge-{id}"))),
        Some(p) => p,
    };
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::Config(format!(
            "linux.cgroupsPath {}: '..' is not allowed",
            p.display()
        )));
    }
    let clean = strip_root(p);
    if clean.as_os_str().is_empty() {
        return Err(Error::Config(format!(
            "linux.cgroupsPath {:?} names no cgroup",
            p.display()
        )));
    }
    Ok(if p.is_absolute() {
        clean
    } else {
        own.join(clean)
    })
}

/// Create the container's cgroup in every hierarchy. On error, everything created is removed.
///
/// A runtime running as non-root (rootless) usually may not write the cgroup tree. As runc,
/// when creating a directory fails for lack of permission (EACCES, EPERM, EROFS) and the
/// config has no `cgroupsPath` and asks for no limits (`resources` absent or only device
/// rules), the container runs without cgroups: the returned placement is empty, with
/// [`Placement::skipped`] saying why, and a warning is logged. With limits (or an explicit
/// `cgroupsPath`) that is an error naming the directory and what to do.
pub fn create(
    cgroups_path: Option<&Path>,
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<Placement> {
    let (mode, hierarchies) = detect()?;
    let mut placement = Placement {
        mode,
        ..Default::default()
    };
    let mut trying = None;
    let result = (|| {
        for h in &hierarchies {
            let rel = relative_path(cgroups_path, &h.own, id)?;
            let dir = h.mount_point.join(&rel);
            trying = Some(dir.clone());
            mkdir_all(
                &h.mount_point,
                &rel,
                &mut placement.created,
                h.has("cpuset"),
            )?;
            if h.has("freezer") || (mode == Mode::V2 && h.is_unified()) {
                placement.freezer = Some(dir.clone());
            }
            if h.is_unified() {
                placement.unified = Some(dir.clone());
                placement.delegate_from = Some(if rel.starts_with(&h.own) {
                    h.mount_point.join(&h.own)
                } else {
                    h.mount_point.clone()
                });
            }
            for c in &h.controllers {
                placement.controllers.insert(c.clone(), dir.clone());
            }
            placement.paths.push(dir);
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = placement.remove();
        let euid = nix::unistd::geteuid().as_raw();
        return rootless_fallback(e, euid, mode, trying.as_deref(), cgroups_path, resources);
    }
    Ok(placement)
}

/// [`create`] failed with `e` (creating `dir`, run by `euid`): continue without cgroups if a
/// rootless runtime may, else say why it may not.
fn rootless_fallback(
    e: Error,
    euid: u32,
    mode: Mode,
    dir: Option<&Path>,
    cgroups_path: Option<&Path>,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<Placement> {
    let denied = match &e {
        Error::Io { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EROFS)
        ),
        _ => false,
    };
    if euid == 0 || !denied {
        return Err(e);
    }
    // Everything created was removed again: the deepest directory still there is the one the
    // runtime could not create a child in.
    let dir = dir
        .and_then(|d| d.ancestors().skip(1).find(|a| a.is_dir()))
        .map_or_else(|| "the cgroup tree".into(), |d| d.display().to_string());
    let why = format!("{dir} is not writable by uid {euid}");
    if let Some(p) = cgroups_path {
        return Err(Error::Unsupported(format!(
            "linux.cgroupsPath {}: {why} ({e}); a rootless container runs without cgroups only \
             when the config names no cgroupsPath and asks for no limits",
            p.display()
        )));
    }
    let limits = limits_asked(resources);
    if !limits.is_empty() {
        return Err(Error::Unsupported(format!(
            "linux.resources asks for limits ({}) but {why} ({e}): a rootless container can \
             only have limits in a cgroup delegated to its user; remove the limits or \
             delegate a cgroup",
            limits.join(", ")
        )));
    }
    tracing::warn!("running without cgroups: {why}; delegate a cgroup to use limits");
    Ok(Placement {
        mode,
        skipped: Some(why),
        ..Default::default()
    })
}

/// The `linux.resources` fields that ask for limits, i.e. everything set but `devices`
/// (device rules need no cgroup of their own in a user namespace, which keeps devices out
/// of reach anyway). Empty objects and lists ask for nothing.
pub fn limits_asked(r: &oci_spec::runtime::LinuxResources) -> Vec<String> {
    fn set(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Null => false,
            serde_json::Value::Object(m) => m.values().any(set),
            serde_json::Value::Array(a) => a.iter().any(set),
            _ => true,
        }
    }
    match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(m)) => m
            .iter()
            .filter(|(k, v)| k.as_str() != "devices" && set(v))
            .map(|(k, _)| format!("linux.resources.{k}"))
            .collect(),
        // Not representable as JSON: assume limits, so nothing is silently dropped.
        _ => vec!["linux.resources".into()],
    }
}

fn mkdir_all(base: &Path, rel: &Path, created: &mut Vec<PathBuf>, cpuset: bool) -> Result<()> {
    let mut cur = base.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => {
                created.push(cur.clone());
                if cpuset {
                    inherit_cpuset(&parent, &cur)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| at("create cgroup", &cur)),
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpus/mems; tasks can't join until they're filled.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let v = fs::read_to_string(parent.join(f)).ctx(|| at("read", &parent.join(f)))?;
            fs::write(dir.join(f), v.trim()).ctx(|| at("write", &dir.join(f)))?;
        }
    }
    Ok(())
}

impl Placement {
    /// The directory serving `controller` (v1 name: `memory`, `cpu`, `blkio`, `hugetlb`, ...)
    /// and which file interface it speaks. On hybrid hosts a controller without a v1 hierarchy
    /// is served by the unified tree if the kernel offers it there.
    pub fn dir_for(&self, controller: &str) -> Option<(Driver, &Path)> {
        if let Some(dir) = self.controllers.get(controller) {
            return Some((Driver::V1, dir));
        }
        let unified = self.unified.as_deref()?;
        let name = v2::controller_name(controller)?;
        match self.mode {
            Mode::V2 => Some((Driver::V2, unified)),
            Mode::Hybrid if v2::offered(unified, name) => Some((Driver::V2, unified)),
            _ => None,
        }
    }

    /// Move the calling (single-threaded) process into every v1 hierarchy of the container.
    ///
    /// Writing "0" to a v1 `tasks` file moves the caller's thread without taking the kernel's
    /// global cgroup_threadgroup_rwsem for writing: ~50 µs instead of an RCU grace period
    /// (~10 ms) per container start. For a single-threaded process the thread is the process.
    pub fn join_self_v1(&self) -> Result<()> {
        self.open_v1_tasks()?.join_self()
    }

    /// Open every v1 hierarchy's `tasks` file, to join later with [`V1Tasks::join_self`].
    ///
    /// The kernel checks a cgroup v1 write against the credentials the file was opened with,
    /// so files opened before the caller enters a user namespace still take the write after.
    pub fn open_v1_tasks(&self) -> Result<V1Tasks> {
        let files = self
            .paths
            .iter()
            .filter(|p| Some(*p) != self.unified.as_ref())
            .map(|dir| {
                let tasks = dir.join("tasks");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&tasks)
                    .map(|f| (tasks.clone(), f))
                    .ctx(|| at("open", &tasks))
            })
            .collect::<Result<_>>()?;
        Ok(V1Tasks(files))
    }

    /// Move the calling process into the unified hierarchy's directory (the fallback when it
    /// could not be born there with CLONE_INTO_CGROUP).
    pub fn join_self_unified(&self) -> Result<()> {
        if let Some(dir) = &self.unified {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, "0").ctx(|| format!("join {}", procs.display()))?;
        }
        Ok(())
    }

    /// Pids currently in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        if let Some(why) = &self.skipped {
            return Err(Error::Unsupported(format!(
                "the container has no cgroup to list its processes: {why}"
            )));
        }
        let Some(dir) = self.freezer.as_ref().or(self.paths.first()) else {
            return Ok(Vec::new());
        };
        let procs = dir.join("cgroup.procs");
        let text = fs::read_to_string(&procs).ctx(|| at("read", &procs))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Whether the freezer reports the cgroup frozen.
    pub fn is_frozen(&self) -> bool {
        let Some(dir) = &self.freezer else {
            return false;
        };
        match self.mode {
            Mode::V2 => fs::read_to_string(dir.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false),
            _ => fs::read_to_string(dir.join("freezer.state"))
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false),
        }
    }

    /// Freeze (`true`) or thaw the container's cgroup and wait until the kernel reports it done
    /// (v1: freezer.state FREEZING → FROZEN; v2: `frozen 1` in cgroup.events).
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(why) = &self.skipped {
            return Err(Error::Unsupported(format!(
                "the container has no cgroup to freeze: {why}"
            )));
        }
        let dir = self.freezer.as_ref().ok_or_else(|| {
            Error::Unsupported("no freezer: neither a v1 freezer hierarchy nor cgroup v2".into())
        })?;
        let (file, value) = match (self.mode, frozen) {
            (Mode::V2, true) => ("cgroup.freeze", "1"),
            (Mode::V2, false) => ("cgroup.freeze", "0"),
            (_, true) => ("freezer.state", "FROZEN"),
            (_, false) => ("freezer.state", "THAWED"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            fs::write(dir.join(file), value).ctx(|| at("write", &dir.join(file)))?;
            if self.freezer_reports(frozen) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Container(format!(
                    "cgroup {} did not {} within 10 s",
                    dir.display(),
                    if frozen { "freeze" } else { "thaw" }
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn freezer_reports(&self, frozen: bool) -> bool {
        let Some(dir) = &self.freezer else {
            return false;
        };
        match self.mode {
            Mode::V2 => fs::read_to_string(dir.join("cgroup.events"))
                .map(|s| {
                    s.lines()
                        .any(|l| l == if frozen { "frozen 1" } else { "frozen 0" })
                })
                .unwrap_or(false),
            _ => fs::read_to_string(dir.join("freezer.state"))
                .map(|s| s.trim() == if frozen { "FROZEN" } else { "THAWED" })
                .unwrap_or(false),
        }
    }

    /// Remove the container's cgroups (leaf first), retrying while tasks are still exiting.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = None;
        // The container's own directories must go (retried while its last tasks exit).
        for d in &self.paths {
            if let Err(e) = rmdir_retry(d) {
                first_err.get_or_insert(e);
            }
        }
        // Parents this container created may be shared by containers made since (e.g. the
        // engine's `barge/` under its own cgroup): one try each, deepest first; busy is fine.
        let mut parents: Vec<&PathBuf> = self
            .created
            .iter()
            .filter(|c| !self.paths.contains(c))
            .collect();
        parents.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in parents {
            let _ = fs::remove_dir(d);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Write `value` to a cgroup interface file, naming the file and value on error.
pub(crate) fn write(dir: &Path, file: &str, value: impl AsRef<str>) -> Result<()> {
    let path = dir.join(file);
    let value = value.as_ref();
    fs::write(&path, value).ctx(|| format!("set {} to {value:?}", path.display()))
}

/// Read a cgroup interface file, trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .ctx(|| at("read", &path))
}

/// Read a file holding one unsigned number ("max" reads as u64::MAX).
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| {
        Error::Container(format!(
            "{}: {s:?} is not a number",
            dir.join(file).display()
        ))
    })
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_millis(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e).ctx(|| at("remove cgroup", dir)),
        }
    }
}

/// The opened `tasks` files of a container's v1 hierarchies (see [`Placement::open_v1_tasks`]).
pub struct V1Tasks(Vec<(PathBuf, fs::File)>);

impl V1Tasks {
    /// Move the calling (single-threaded) process into each hierarchy ("0": the caller's
    /// thread), consuming the files.
    pub fn join_self(self) -> Result<()> {
        use std::io::Write;
        for (path, mut f) in self.0 {
            f.write_all(b"0")
                .ctx(|| format!("join {}", path.display()))?;
        }
        Ok(())
    }
}

/// A fake cgroupfs directory for the drivers' unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::path::Path;

    /// A temporary directory holding `files` (name, content).
    pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        d
    }

    /// The content of `f` in `d`.
    pub fn get(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset,clone_children
";
    const HYBRID_CGROUP: &str = "\
5:cpuset:/
4:cpu,cpuacct:/user.slice
3:memory:/process_api/abc
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
";

    #[test]
    fn hybrid_layout_is_detected_with_own_paths() {
        let (mode, hs) = parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        assert_eq!(mode, Mode::Hybrid);
        assert_eq!(hs.len(), 5);
        let mem = hs.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(mem.own, PathBuf::from("process_api/abc"));
        let cpu = hs.iter().find(|h| h.has("cpuacct")).unwrap();
        assert_eq!(cpu.mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.own, PathBuf::from("user.slice"));
        let uni = hs.iter().find(|h| h.is_unified()).unwrap();
        assert_eq!(uni.own, PathBuf::from("user.slice/session-1.scope"));
        assert!(hs.iter().any(|h| h.has("name=systemd")));
    }

    #[test]
    fn v2_layout_keeps_only_the_unified_root() {
        let mi = "25 20 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let (mode, hs) = parse(mi, "0::/system.slice/barge.service\n");
        assert_eq!(mode, Mode::V2);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].own, PathBuf::from("system.slice/barge.service"));
    }

    #[test]
    fn v1_only_layout() {
        let mi = "33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let (mode, hs) = parse(mi, "2:pids:/a\n");
        assert_eq!(mode, Mode::V1);
        assert_eq!(hs[0].own, PathBuf::from("a"));
    }

    #[test]
    fn cgroup_namespace_mount_root_is_stripped() {
        let mi = "33 30 0:29 /ctr /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let (_, hs) = parse(mi, "2:pids:/ctr/sub\n");
        assert_eq!(hs[0].own, PathBuf::from("sub"));
    }

    #[test]
    fn cgroups_path_rules() {
        let own = Path::new("process_api/abc");
        assert_eq!(
            relative_path(None, own, "c1").unwrap(),
            PathBuf::from("process_api/abc/barge-c1")
        );
        assert_eq!(
            relative_path(Some(Path::new("x/y")), own, "c1").unwrap(),
            PathBuf::from("process_api/abc/x/y")
        );
        assert_eq!(
            relative_path(Some(Path::new("/abs/y")), own, "c1").unwrap(),
            PathBuf::from("abs/y")
        );
        assert!(relative_path(Some(Path::new("x/../../y")), own, "c1").is_err());
        assert!(relative_path(Some(Path::new("/")), own, "c1").is_err());
    }

    /// v2 freeze: write cgroup.freeze, then wait for the kernel's `frozen 1` in cgroup.events
    /// (played here by a thread on a fake cgroupfs directory).
    #[test]
    fn v2_freeze_waits_for_the_kernel_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        fs::write(d.join("cgroup.freeze"), "0").unwrap();
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let p = Placement {
            mode: Mode::V2,
            freezer: Some(d.clone()),
            unified: Some(d.clone()),
            ..Default::default()
        };
        let kernel = std::thread::spawn(move || {
            let start = Instant::now();
            while fs::read_to_string(d.join("cgroup.freeze")).unwrap() != "1" {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "freeze never written"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
            start.elapsed()
        });
        let t0 = Instant::now();
        p.set_frozen(true).unwrap();
        let waited = t0.elapsed();
        let kernel_took = kernel.join().unwrap();
        assert!(
            waited >= Duration::from_millis(50),
            "returned before the handshake: {waited:?}"
        );
        assert!(waited >= kernel_took.saturating_sub(Duration::from_millis(5)));
        assert!(p.is_frozen());
    }

    #[test]
    fn dir_for_picks_v1_first_then_the_unified_tree() {
        let t = tempfile::tempdir().unwrap();
        let uni = t.path().join("unified");
        fs::create_dir_all(uni.join("ctr")).unwrap();
        fs::write(uni.join("cgroup.controllers"), "hugetlb").unwrap();
        let mut p = Placement {
            mode: Mode::Hybrid,
            unified: Some(uni.join("ctr")),
            ..Default::default()
        };
        p.controllers
            .insert("memory".into(), t.path().join("memory/ctr"));
        assert_eq!(p.dir_for("memory").unwrap().0, Driver::V1);
        assert_eq!(
            p.dir_for("hugetlb").unwrap(),
            (Driver::V2, uni.join("ctr").as_path())
        );
        assert!(
            p.dir_for("pids").is_none(),
            "hybrid: unified tree does not offer pids"
        );
        p.mode = Mode::V2;
        p.controllers.clear();
        assert_eq!(p.dir_for("pids").unwrap().0, Driver::V2);
        assert!(
            p.dir_for("devices").is_none(),
            "v2 has no devices controller files"
        );
    }

    fn resources(json: serde_json::Value) -> oci_spec::runtime::LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn limits_are_everything_but_device_rules() {
        let none = resources(serde_json::json!({}));
        assert!(limits_asked(&none).is_empty());
        let devices = resources(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {}
        }));
        assert!(limits_asked(&devices).is_empty());
        let limits = resources(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 1048576},
            "pids": {"limit": 10}
        }));
        assert_eq!(
            limits_asked(&limits),
            ["linux.resources.memory", "linux.resources.pids"]
        );
    }

    /// A rootless runtime that may not create the cgroup continues without one, unless the
    /// config asks for limits or names a cgroupsPath; root and other errors always fail.
    #[test]
    fn rootless_without_permission_runs_without_cgroups_only_without_limits() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("barge-c1");
        let denied = || Error::Io {
            context: format!("create cgroup {}", dir.display()),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let none = resources(serde_json::json!({"devices": [{"allow": false}]}));
        let p = rootless_fallback(denied(), 1000, Mode::V2, Some(&dir), None, &none).unwrap();
        assert!(p.paths.is_empty() && p.unified.is_none() && p.freezer.is_none());
        let why = p.skipped.as_deref().unwrap();
        assert_eq!(
            why,
            format!("{} is not writable by uid 1000", t.path().display())
        );
        assert!(p.pids().is_err(), "no cgroup: no process list to trust");
        assert!(p.set_frozen(true).is_err());
        // apply() does nothing without limits (device rules are skipped) ...
        p.apply(&none, &[], resources::Phase::Create).unwrap();
        // ... and refuses limits (as `update` would ask) naming the field.
        let mem = resources(serde_json::json!({"memory": {"limit": 1048576}}));
        let e = p
            .apply(&mem, &[], resources::Phase::Update)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.memory") && e.contains(why),
            "{e}"
        );

        let e = rootless_fallback(denied(), 1000, Mode::V2, Some(&dir), None, &mem)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.memory") && e.contains("not writable by uid 1000"),
            "{e}"
        );
        let e = rootless_fallback(
            denied(),
            1000,
            Mode::V2,
            Some(&dir),
            Some(Path::new("/mine")),
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.cgroupsPath /mine"), "{e}");
        assert!(rootless_fallback(denied(), 0, Mode::V2, Some(&dir), None, &none).is_err());
        let other = Error::Io {
            context: "create cgroup x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert!(rootless_fallback(other, 1000, Mode::V2, Some(&dir), None, &none).is_err());
    }
}
