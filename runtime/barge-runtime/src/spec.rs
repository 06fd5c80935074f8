//! Loading and validating a bundle's config.json before anything is created.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A loaded bundle: its directory, its spec and the absolute rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Parse JSON whose errors name the field (`linux.resources.devices[0].type: unknown variant
/// ...`), not only a line and column.
///
/// Every parse of a spec (config.json, state files, `update`) goes through here: one
/// instantiation of the spec's large deserializer keeps the binary small.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    crate::json_path::parse(text)
}

/// Read `<bundle>/config.json`, parse it and check that it asks for something this runtime can do.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::Config(format!("bundle directory {}: {e}", dir.display())))?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    let spec: Spec =
        parse_json(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Config(format!("{}: root is missing", path.display())))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| Error::Config(format!("root.path {}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(Error::Config(format!(
            "root.path {} is not a directory",
            rootfs.display()
        )));
    }
    validate(&spec)?;
    crate::lsm::check(&spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Semantic checks the JSON schema cannot express.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("process is missing".into()))?;
    match process.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(Error::Config("process.args must not be empty".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "process.cwd {} must be an absolute path",
            process.cwd().display()
        )));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Config("linux section is missing".into()))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for ns in namespaces {
        if !seen.insert(ns.typ()) {
            return Err(Error::Config(format!(
                "linux.namespaces: {} listed twice",
                ns.typ()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::Config(format!(
                    "linux.namespaces: path {} of the {} namespace must be absolute",
                    p.display(),
                    ns.typ()
                )));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        return Err(Error::Config(
            "linux.namespaces: a mount namespace is required (the rootfs is set up in it)".into(),
        ));
    }
    let new_ns = |t: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let non_empty = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    if (non_empty(spec.hostname()) || non_empty(spec.domainname()))
        && !new_ns(LinuxNamespaceType::Uts)
    {
        return Err(Error::Config(
            "hostname/domainname need a new uts namespace".into(),
        ));
    }
    if (linux.uid_mappings().is_some() || linux.gid_mappings().is_some())
        && !has(LinuxNamespaceType::User)
    {
        return Err(Error::Config(
            "linux.uidMappings/gidMappings need a user namespace".into(),
        ));
    }
    if linux.time_offsets().is_some() && !new_ns(LinuxNamespaceType::Time) {
        return Err(Error::Config(
            "linux.timeOffsets need a new time namespace".into(),
        ));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            check_sysctl(key, &has)?;
        }
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(Error::Config(format!(
                "mount destination {} must be an absolute path",
                m.destination().display()
            )));
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        crate::rootfs::propagation_flag(p)?;
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only when the matching namespace is new or joined.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.is_empty() || key.contains("..") || key.starts_with(['/', '.']) {
        return Err(Error::Config(format!("linux.sysctl: invalid key {key:?}")));
    }
    let k = key.replace('/', ".");
    let (ok, ns) = if ipc.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        (has(LinuxNamespaceType::Ipc), "ipc")
    } else if k.starts_with("net.") {
        (has(LinuxNamespaceType::Network), "network")
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        (has(LinuxNamespaceType::Uts), "uts")
    } else {
        return Err(Error::Config(format!(
            "linux.sysctl: {key} is not namespaced and cannot be set for a container"
        )));
    };
    if !ok {
        return Err(Error::Config(format!(
            "linux.sysctl: {key} needs a {ns} namespace"
        )));
    }
    Ok(())
}
