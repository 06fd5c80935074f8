//! The OCI spec of a container, made like docker makes it: docker's capabilities, seccomp
//! profile, masked and read-only paths, /etc/hosts, /etc/hostname, /etc/resolv.conf, and the
//! user's flags on top.

use std::path::{Path, PathBuf};

use barge_runtime::default_spec::default_spec;
use barge_runtime::seccomp::{default_profile_for_caps, DOCKER_DEFAULT_CAPS};
use serde_json::{json, Value};

use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::user;

/// Everything besides the config that goes into a spec.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    /// The mounted rootfs (to look up users and groups).
    pub rootfs: &'a Path,
    /// The container's directory (hosts, hostname, resolv.conf live there).
    pub dir: &'a Path,
    /// Host paths of the `-v` mounts, in the config's order.
    pub mount_sources: &'a [PathBuf],
    /// tini (docker-init) for `--init`.
    pub init_path: &'a Path,
    /// Where /etc/hosts and /etc/resolv.conf come from (the container's directory, or that
    /// of the container whose network it shares).
    pub etc_dir: &'a Path,
    /// The pinned network namespace to join (None: the host's).
    pub netns: Option<&'a Path>,
    /// The pod sandbox it joins, if a pod member.
    pub pod: Option<PodJoin>,
}

/// What a pod member takes from its pod's sandbox.
#[derive(Debug, Clone, Default)]
pub struct PodJoin {
    /// Pinned namespaces to join besides the network (OCI type `ipc`, `uts`, `pid` → path).
    pub namespaces: Vec<(&'static str, PathBuf)>,
    /// Namespaces taken from the host (OCI type `ipc` for hostIPC, `uts` for a pod on the
    /// host's network): no namespace of the container's own.
    pub host: Vec<&'static str>,
    /// The pod's /dev/shm (with a shared IPC namespace).
    pub shm: Option<PathBuf>,
    /// The pod cgroup (`linux.cgroupsPath` prefix).
    pub cgroup: String,
}

/// Present when the v1 memory controller accounts swap.
const V1_MEMSW: &str = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";

/// Where `--init` puts its init inside the container (as docker does).
const INIT_DEST: &str = "/sbin/docker-init";

pub fn build(input: &SpecInput) -> Result<Value> {
    let c = input.config;
    let mut spec = default_spec(false);
    let caps = capabilities(c)?;
    // Process.
    let mut args: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
    if args.is_empty() {
        return Err(Error::Invalid(format!(
            "image {}: no command given and the image has no Cmd or Entrypoint",
            c.image
        )));
    }
    if c.init {
        args.splice(0..0, [INIT_DEST.to_string(), "--".into()]);
    }
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={}", c.hostname),
    ];
    if c.tty {
        env.push("TERM=xterm".into());
    }
    let env = crate::config::merge_env(&env, &c.env);
    let u = user::resolve(input.rootfs, &c.user)?;
    let p = &mut spec["process"];
    p["terminal"] = json!(c.tty);
    p["args"] = json!(args);
    p["env"] = json!(env);
    p["cwd"] = json!(if c.working_dir.is_empty() {
        "/"
    } else {
        &c.working_dir
    });
    let mut gids = u.additional_gids.clone();
    for g in &c.supplemental_groups {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    p["user"] = json!({"uid": u.uid, "gid": u.gid, "additionalGids": gids});
    p["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    p["noNewPrivileges"] = json!(c.no_new_privileges);
    if let Some(o) = p.as_object_mut() {
        o.remove("rlimits");
    }
    spec["root"] = json!({"path": "rootfs", "readonly": c.read_only});
    spec["hostname"] = json!(c.hostname);
    // Mounts.
    let mounts = spec["mounts"].as_array_mut().ok_or_else(no_mounts)?;
    for (name, dir, file) in [
        ("/etc/resolv.conf", input.etc_dir, "resolv.conf"),
        ("/etc/hostname", input.dir, "hostname"),
        ("/etc/hosts", input.etc_dir, "hosts"),
    ] {
        mounts.push(json!({"destination": name, "type": "bind",
            "source": dir.join(file), "options": ["rbind", "rprivate"]}));
    }
    for (m, src) in c.mounts.iter().zip(input.mount_sources) {
        let mut opts = vec!["rbind", "rprivate"];
        if m.readonly {
            opts.push("ro");
        }
        mounts.push(json!({"destination": m.destination, "type": "bind",
            "source": src, "options": opts}));
    }
    if c.init {
        mounts.push(json!({"destination": INIT_DEST, "type": "bind",
            "source": input.init_path, "options": ["bind", "ro", "rprivate"]}));
    }
    // Namespaces.
    let linux = &mut spec["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        match input.netns {
            None => ns.retain(|n| n["type"] != "network"),
            Some(path) => {
                for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                    n["path"] = json!(path);
                }
            }
        }
    }
    pid_namespace(linux, &c.pid_mode)?;
    if !c.sysctls.is_empty() {
        linux["sysctl"] = json!(c.sysctls);
    }
    if let Some(m) = &c.masked_paths {
        linux["maskedPaths"] = json!(m);
    }
    if let Some(r) = &c.readonly_paths {
        linux["readonlyPaths"] = json!(r);
    }
    linux["cgroupsPath"] = json!(format!("barge/{}", input.id));
    // Resources.
    let mut res = limits(c);
    res["devices"] = json!([{"allow": false, "access": "rwm"}]);
    // Security.
    if c.privileged {
        res["devices"] = json!([{"allow": true, "access": "rwm"}]);
        linux["devices"] = json!(host_devices());
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
        if let Some(ms) = spec["mounts"].as_array_mut() {
            for m in ms.iter_mut() {
                if m["type"] == "sysfs" || m["type"] == "cgroup" {
                    if let Some(o) = m["options"].as_array_mut() {
                        o.retain(|x| x != "ro");
                        o.push(json!("rw"));
                    }
                }
            }
        }
    } else {
        let seccomp = match c.seccomp.as_deref() {
            Some("unconfined") => None,
            Some(path) => Some(crate::seccomp::load_profile(Path::new(path), &caps)?),
            None => {
                let names: Vec<&str> = caps.iter().map(String::as_str).collect();
                Some(
                    serde_json::to_value(default_profile_for_caps(&names))
                        .map_err(Error::encode("default seccomp profile"))?,
                )
            }
        };
        if let Some(s) = seccomp {
            spec["linux"]["seccomp"] = s;
        }
    }
    spec["linux"]["resources"] = res;
    if let Some(pod) = &input.pod {
        join_pod(&mut spec, pod, input.id);
    }
    let mut ann = serde_json::Map::new();
    for (k, v) in c.labels.iter().chain(&c.annotations) {
        ann.insert(k.clone(), json!(v));
    }
    spec["annotations"] = Value::Object(ann);
    // The result must be a valid spec for the runtime.
    let parsed: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).map_err(|e| Error::Spec(e.to_string()))?;
    barge_runtime::spec::validate(&parsed)?;
    Ok(spec)
}

/// The container's PID namespace from `pid_mode`: its own (""), the host's (`host`), or the
/// namespace file at an absolute path (another container's, `/proc/PID/ns/pid`).
fn pid_namespace(linux: &mut Value, mode: &str) -> Result<()> {
    let Some(ns) = linux["namespaces"].as_array_mut() else {
        return Ok(());
    };
    match mode {
        "" => {}
        "host" => ns.retain(|n| n["type"] != "pid"),
        p if p.starts_with('/') => {
            for n in ns.iter_mut().filter(|n| n["type"] == "pid") {
                n["path"] = json!(p);
            }
        }
        other => {
            return Err(Error::BadParameter(format!(
                "pid mode {other:?}: use host or the path of a PID namespace file"
            )))
        }
    }
    Ok(())
}

/// Join the pod's IPC, UTS and PID namespaces (or the host's), use its /dev/shm, go under
/// its cgroup.
fn join_pod(spec: &mut Value, pod: &PodJoin, id: &str) {
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        for (typ, path) in &pod.namespaces {
            for n in ns.iter_mut().filter(|n| n["type"] == *typ) {
                n["path"] = json!(path);
            }
        }
        ns.retain(|n| !pod.host.iter().any(|t| n["type"] == *t));
    }
    if pod.host.contains(&"ipc") {
        // The host's IPC namespace goes with the host's POSIX shared memory.
        if let Some(ms) = spec["mounts"].as_array_mut() {
            for m in ms.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
                *m = json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                    "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]});
            }
        }
    }
    if pod.namespaces.iter().any(|(t, _)| *t == "uts") || pod.host.contains(&"uts") {
        // The hostname is the pod's, set in its UTS namespace (or the host's own).
        if let Some(o) = spec.as_object_mut() {
            o.remove("hostname");
        }
    }
    if let (Some(shm), Some(ms)) = (&pod.shm, spec["mounts"].as_array_mut()) {
        for m in ms.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
            *m = json!({"destination": "/dev/shm", "type": "bind", "source": shm,
                "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]});
        }
    }
    spec["linux"]["cgroupsPath"] = json!(format!("{}/{id}", pod.cgroup));
}

fn no_mounts() -> Error {
    Error::Spec("the default spec has no mounts".into())
}

/// Every capability barge can give a container: the known ones in our bounding set (as
/// docker does; a capability we lack can't be granted, and asking for it fails the start).
/// The container's resource limits as the spec's `linux.resources` (memory, cpu, pids; no
/// device rules): what `build` puts in the spec and what `update` applies to a live one.
pub fn limits(c: &ContainerConfig) -> Value {
    let mut res = json!({});
    if let Some(m) = c.memory {
        res["memory"] = json!({"limit": m});
        // docker: without --memory-swap, as much swap as memory (memory + swap = 2 × limit),
        // where the kernel accounts swap.
        if Path::new(V1_MEMSW).exists() {
            res["memory"]["swap"] = json!(m.saturating_mul(2));
        }
    }
    if let Some(cpus) = c.cpus {
        res["cpu"] = json!({"quota": (cpus * 100_000.0).round() as i64, "period": 100_000});
    }
    if let Some(p) = c.pids_limit {
        res["pids"] = json!({"limit": p});
    }
    res
}

pub fn grantable_capabilities() -> Vec<String> {
    let all = caps::all();
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap_or_else(|_| all.clone());
    let mut v: Vec<String> = all.intersection(&bounding).map(|c| c.to_string()).collect();
    v.sort();
    v
}

/// Docker's default capabilities with `--cap-add`/`--cap-drop` applied (`ALL` allowed in
/// both); every grantable capability with `--privileged`.
pub fn capabilities(c: &ContainerConfig) -> Result<Vec<String>> {
    if c.privileged {
        return Ok(grantable_capabilities());
    }
    let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let norm = |s: &str| -> Result<String> {
        let up = s.to_ascii_uppercase();
        if up == "ALL" {
            return Ok(up);
        }
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if all.contains(&full) {
            Ok(full)
        } else {
            Err(Error::Invalid(format!("unknown capability {s:?}")))
        }
    };
    let add: Vec<String> = c.cap_add.iter().map(|s| norm(s)).collect::<Result<_>>()?;
    let drop: Vec<String> = c.cap_drop.iter().map(|s| norm(s)).collect::<Result<_>>()?;
    let mut set: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DOCKER_DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !drop.contains(s))
            .collect()
    };
    if add.iter().any(|a| a == "ALL") {
        set = grantable_capabilities()
            .into_iter()
            .filter(|s| !drop.contains(s))
            .collect();
    } else {
        for a in add {
            if !set.contains(&a) {
                set.push(a);
            }
        }
    }
    set.sort();
    Ok(set)
}

/// Every character and block device directly under the host's /dev (`--privileged`).
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/dev") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let ft = md.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = md.rdev();
        out.push(json!({
            "path": e.path(), "type": kind,
            "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
            "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_docker() {
        let mut c = ContainerConfig::default();
        let d = capabilities(&c).unwrap();
        assert_eq!(d.len(), DOCKER_DEFAULT_CAPS.len());
        c.cap_add = vec!["sys_admin".into()];
        c.cap_drop = vec!["CAP_CHOWN".into()];
        let v = capabilities(&c).unwrap();
        assert!(v.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!v.contains(&"CAP_CHOWN".to_string()));
        c.cap_drop = vec!["ALL".into()];
        c.cap_add = vec!["NET_RAW".into()];
        assert_eq!(capabilities(&c).unwrap(), vec!["CAP_NET_RAW".to_string()]);
        c.cap_add = vec!["NOPE".into()];
        assert!(capabilities(&c).is_err());
    }
}
