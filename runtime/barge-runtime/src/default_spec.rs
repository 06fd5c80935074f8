//! The config.json that `spec` writes (runc's defaults, with barge's hostname).

use serde_json::{json, Value};

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The default spec; `rootless` adds a user namespace mapping the calling user to root.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": MASKED,
        "readonlyPaths": READONLY,
    });
    if rootless {
        // The kernel lets an unprivileged user map its own (effective) ids, one each; the
        // runtime denies setgroups before writing the gid map, as the kernel requires.
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        // Unlike runc's rootless spec the container keeps its network namespace (only `lo`).
        // Created after the user namespace, it is owned by it, and so are the cgroup
        // namespace and the mount namespace: sysfs (showing the container's own network
        // devices, not the host's) and the cgroup hierarchies (read-only, rooted at the
        // runtime's own cgroup) can be mounted as in the default spec. Without a network
        // namespace of its own the runtime binds the host's /sys read-only instead.
        // devpts: no gid=5, the host's tty group is not mapped.
        for m in &mut mounts {
            if m["type"] == "devpts" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "gid=5");
                }
            }
        }
        namespaces.push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // No cgroup limits or device rules: an unprivileged user usually can't write the
        // cgroup tree, and the runtime then runs the container without cgroups.
        if let Some(l) = linux.as_object_mut() {
            l.remove("resources");
        }
    }
    linux["namespaces"] = Value::Array(namespaces);
    json!({
        "ociVersion": "1.2.1",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "barge",
        "mounts": mounts,
        "linux": linux
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse_and_validate() {
        for rootless in [false, true] {
            let v = default_spec(rootless);
            let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
            crate::spec::validate(&spec).unwrap();
        }
    }

    #[test]
    fn rootless_spec_maps_the_caller_and_keeps_its_netns() {
        let v = default_spec(true);
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        for t in ["user", "network", "pid", "mount", "cgroup"] {
            assert!(ns.iter().any(|n| n["type"] == t), "no {t} namespace");
        }
        for (field, id) in [
            ("uidMappings", nix::unistd::geteuid().as_raw()),
            ("gidMappings", nix::unistd::getegid().as_raw()),
        ] {
            assert_eq!(
                v["linux"][field],
                json!([{"containerID": 0, "hostID": id, "size": 1}])
            );
        }
        assert!(v["linux"].get("resources").is_none());
        let devpts = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "devpts")
            .unwrap();
        assert!(!devpts["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "gid=5"));
        assert_eq!(
            default_spec(false)["mounts"],
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| if m["type"] == "devpts" {
                    let mut m = m.clone();
                    m["options"].as_array_mut().unwrap().push(json!("gid=5"));
                    m
                } else {
                    m.clone()
                })
                .collect::<Value>(),
            "only devpts differs from the default mounts"
        );
    }
}
