//! A CRI container's Linux security context and resources as the engine's container config,
//! mapped as the containerd CRI plugin maps them to the OCI spec: user and groups,
//! privileged (only in a privileged sandbox), capabilities, seccomp (`RuntimeDefault` →
//! the default profile, `Unconfined`, `Localhost` → a profile file; no profile at all →
//! unconfined, as containerd), read-only rootfs, no_new_privs, masked/read-only paths
//! (kubelet's lists replace the defaults; privileged clears them), and the PID namespace
//! (CONTAINER, NODE, POD, TARGET).

use barge_engine::config::ContainerConfig;
use tonic::Status;

use crate::proto::security_profile::ProfileType;
use crate::proto::{
    LinuxContainerResources, LinuxContainerSecurityContext, NamespaceMode, SecurityProfile,
};

/// What the security context needs from elsewhere.
pub struct Context<'a> {
    /// The sandbox is privileged (a privileged container needs one).
    pub sandbox_privileged: bool,
    /// Resolves a TARGET container to its PID namespace file.
    pub target_pid_ns: &'a dyn Fn(&str) -> Result<String, Status>,
}

fn bad(msg: String) -> Status {
    Status::invalid_argument(msg)
}

/// Apply `sc` to `c`.
pub fn apply(
    c: &mut ContainerConfig,
    sc: &LinuxContainerSecurityContext,
    cx: &Context<'_>,
) -> Result<(), Status> {
    if sc.privileged && !cx.sandbox_privileged {
        return Err(bad(
            "security context: a privileged container needs a privileged sandbox".into(),
        ));
    }
    c.privileged = sc.privileged;
    // User: uid or name, then the group (a group alone is refused, as containerd does).
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) if u.value < 0 => {
            return Err(bad(format!(
                "security context: run_as_user {} is negative",
                u.value
            )))
        }
        (Some(u), _) => u.value.to_string(),
        (None, name) => name.to_string(),
    };
    match (&sc.run_as_group, user.is_empty()) {
        (Some(_), true) => {
            return Err(bad(
                "security context: run_as_group is given without run_as_user or run_as_username"
                    .into(),
            ))
        }
        (Some(g), false) if g.value < 0 => {
            return Err(bad(format!(
                "security context: run_as_group {} is negative",
                g.value
            )))
        }
        (Some(g), false) => c.user = format!("{user}:{}", g.value),
        (None, _) => c.user = user,
    }
    for g in &sc.supplemental_groups {
        let g = u32::try_from(*g).map_err(|_| {
            bad(format!(
                "security context: supplemental group {g} is out of range"
            ))
        })?;
        if !c.supplemental_groups.contains(&g) {
            c.supplemental_groups.push(g);
        }
    }
    if let Some(caps) = &sc.capabilities {
        c.cap_add = caps.add_capabilities.clone();
        c.cap_drop = caps.drop_capabilities.clone();
        if !caps.add_ambient_capabilities.is_empty() {
            return Err(bad(
                "security context: ambient capabilities are not supported".into(),
            ));
        }
    }
    c.read_only = sc.readonly_rootfs;
    c.no_new_privileges = sc.no_new_privs;
    // The deprecated path form still comes from older kubelets.
    #[allow(deprecated)]
    let path = sc.seccomp_profile_path.as_str();
    c.seccomp = seccomp(sc.seccomp.as_ref(), path)?;
    if !sc.masked_paths.is_empty() {
        c.masked_paths = Some(sc.masked_paths.clone());
    }
    if !sc.readonly_paths.is_empty() {
        c.readonly_paths = Some(sc.readonly_paths.clone());
    }
    if let Some(ns) = &sc.namespace_options {
        c.pid_mode = match NamespaceMode::try_from(ns.pid).unwrap_or(NamespaceMode::Container) {
            NamespaceMode::Container | NamespaceMode::Pod => String::new(),
            NamespaceMode::Node => "host".into(),
            NamespaceMode::Target => {
                if ns.target_id.is_empty() {
                    return Err(bad("namespace options: pid TARGET needs a target_id".into()));
                }
                (cx.target_pid_ns)(&ns.target_id)?
            }
        };
        if ns
            .userns_options
            .as_ref()
            .is_some_and(|u| u.mode != NamespaceMode::Node as i32)
        {
            return Err(bad(
                "namespace options: user namespaces are not supported".into()
            ));
        }
    }
    Ok(())
}

/// The engine's seccomp setting for a CRI profile (or the deprecated path form).
pub fn seccomp(p: Option<&SecurityProfile>, path: &str) -> Result<Option<String>, Status> {
    if let Some(p) = p {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(None),
            Ok(ProfileType::Unconfined) => Ok(Some("unconfined".into())),
            Ok(ProfileType::Localhost) => localhost(&p.localhost_ref),
            Err(_) => Err(bad(format!(
                "seccomp: unknown profile type {}",
                p.profile_type
            ))),
        };
    }
    match path {
        "" | "unconfined" => Ok(Some("unconfined".into())),
        "runtime/default" | "docker/default" => Ok(None),
        p => match p.strip_prefix("localhost/") {
            Some(f) => localhost(f),
            None => Err(bad(format!(
                "seccomp profile {p:?}: use runtime/default, unconfined or localhost/PATH"
            ))),
        },
    }
}

fn localhost(path: &str) -> Result<Option<String>, Status> {
    if !path.starts_with('/') {
        return Err(bad(format!(
            "seccomp localhost profile {path:?}: must be an absolute path"
        )));
    }
    if !std::path::Path::new(path).is_file() {
        return Err(bad(format!(
            "seccomp localhost profile {path}: no such file"
        )));
    }
    Ok(Some(path.to_string()))
}

/// Memory and CPU limits of CRI resources (cpu_shares and oom_score_adj have no engine
/// setting yet and are ignored).
pub fn limits(r: &LinuxContainerResources) -> (Option<i64>, Option<f64>) {
    let memory = (r.memory_limit_in_bytes > 0).then_some(r.memory_limit_in_bytes);
    let cpus =
        (r.cpu_quota > 0 && r.cpu_period > 0).then(|| r.cpu_quota as f64 / r.cpu_period as f64);
    (memory, cpus)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{Capability, Int64Value, NamespaceOption};

    fn cx() -> Context<'static> {
        Context {
            sandbox_privileged: false,
            target_pid_ns: &|id| Ok(format!("/proc/1/ns/pid#{id}")),
        }
    }

    #[test]
    fn maps_like_containerd() {
        let sc = LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1000 }),
            run_as_group: Some(Int64Value { value: 2000 }),
            supplemental_groups: vec![3000, 3001],
            capabilities: Some(Capability {
                add_capabilities: vec!["NET_ADMIN".into()],
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            readonly_rootfs: true,
            no_new_privs: true,
            masked_paths: vec!["/proc/kcore".into()],
            seccomp: Some(SecurityProfile {
                profile_type: ProfileType::Unconfined as i32,
                ..Default::default()
            }),
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Target as i32,
                target_id: "abc".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut c = ContainerConfig::default();
        apply(&mut c, &sc, &cx()).unwrap();
        assert_eq!(c.user, "1000:2000");
        assert_eq!(c.supplemental_groups, vec![3000, 3001]);
        assert_eq!(c.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(c.cap_drop, vec!["ALL"]);
        assert!(c.read_only && c.no_new_privileges);
        assert_eq!(c.masked_paths, Some(vec!["/proc/kcore".to_string()]));
        assert_eq!(c.readonly_paths, None);
        assert_eq!(c.seccomp.as_deref(), Some("unconfined"));
        assert_eq!(c.pid_mode, "/proc/1/ns/pid#abc");
    }

    #[test]
    fn refusals() {
        let mut c = ContainerConfig::default();
        let priv_sc = LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(
            apply(&mut c, &priv_sc, &cx()).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let group_only = LinuxContainerSecurityContext {
            run_as_group: Some(Int64Value { value: 1 }),
            ..Default::default()
        };
        assert!(apply(&mut c, &group_only, &cx()).is_err());
        assert!(seccomp(None, "localhost/rel").is_err());
        assert_eq!(seccomp(None, "runtime/default").unwrap(), None);
        assert_eq!(seccomp(None, "").unwrap().as_deref(), Some("unconfined"));
    }
}
