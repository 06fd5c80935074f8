//! A pod back into Kubernetes YAML (`kube generate`): a `Pod` that `kube play` accepts,
//! with its containers' images, commands, environment (what the image does not already
//! set), working directory, ports, limits, security settings, restart policy, init
//! containers and volumes (named volumes as claims, bind mounts as hostPath).

use std::collections::BTreeMap;

use serde::Serialize;

use super::objects::{
    Capabilities, ClaimVolume, Container, ContainerPort, DnsConfig, DnsOption, EmptyDir, EnvVar,
    HostAlias, HostPath, ObjectMeta, PodSpec, Resources, SeccompProfile, SecurityContext, Volume,
};
use super::quantity;
use crate::config::RestartPolicy;
use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodOut {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: PodSpec,
}

/// A Kubernetes name for a barge name: lower case, `[a-z0-9-]`, at most 63 characters.
fn k8s_name(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    let t = out.trim_matches('-').to_string();
    if t.is_empty() {
        "c".into()
    } else {
        t
    }
}

impl Engine {
    /// The pod `key` (id, name or id prefix) as a Pod YAML document.
    pub fn kube_generate(&self, key: &str) -> Result<String> {
        let pod = self.pod_find(key)?;
        let members = self.pod_containers(&pod.id)?;
        let pc = &pod.config;
        let labels = pc
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("io.barge.kube."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut spec = PodSpec {
            hostname: (pc.hostname != pod.name).then(|| pc.hostname.clone()),
            host_network: pc.network == "host",
            ..Default::default()
        };
        if !pc.dns.servers.is_empty() || !pc.dns.searches.is_empty() || !pc.dns.options.is_empty() {
            spec.dns_config = Some(DnsConfig {
                nameservers: pc.dns.servers.clone(),
                searches: pc.dns.searches.clone(),
                options: pc
                    .dns
                    .options
                    .iter()
                    .map(|o| match o.split_once(':') {
                        Some((n, v)) => DnsOption {
                            name: n.into(),
                            value: Some(v.into()),
                        },
                        None => DnsOption {
                            name: o.clone(),
                            value: None,
                        },
                    })
                    .collect(),
                ..Default::default()
            });
        }
        for h in &pc.extra_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                match spec.host_aliases.iter_mut().find(|a| a.ip == ip) {
                    Some(a) => a.hostnames.push(name.into()),
                    None => spec.host_aliases.push(HostAlias {
                        ip: ip.into(),
                        hostnames: vec![name.into()],
                    }),
                }
            }
        }
        if !pc.sysctls.is_empty() {
            spec.security_context = Some(super::objects::PodSecurityContext {
                sysctls: pc
                    .sysctls
                    .iter()
                    .map(|(k, v)| super::objects::NameValue {
                        name: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                ..Default::default()
            });
        }
        let mut volumes: BTreeMap<String, Volume> = BTreeMap::new();
        let mut first = true;
        for c in &members {
            let mut out = self.generate_container(&pod.name, c, &mut volumes)?;
            if !c.config.init_container {
                if first {
                    // The pod's published ports, on its first container.
                    for p in &pc.ports {
                        out.ports.push(ContainerPort {
                            container_port: p.container_port,
                            host_port: (p.host_port != 0).then_some(p.host_port),
                            host_ip: (!p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                            protocol: Some(p.proto.to_ascii_uppercase()),
                            name: None,
                        });
                    }
                    spec.restart_policy = Some(
                        match c.config.restart {
                            RestartPolicy::No => "Never",
                            RestartPolicy::OnFailure { .. } => "OnFailure",
                            _ => "Always",
                        }
                        .into(),
                    );
                    spec.termination_grace_period_seconds = c.config.stop_timeout.map(i64::from);
                    first = false;
                }
                spec.containers.push(out);
            } else {
                spec.init_containers.push(out);
            }
        }
        if spec.containers.is_empty() {
            return Err(Error::BadParameter(format!(
                "pod {} has no containers: a Kubernetes Pod needs one",
                pod.name
            )));
        }
        spec.volumes = volumes.into_values().collect();
        let doc = PodOut {
            api_version: "v1",
            kind: "Pod",
            metadata: ObjectMeta {
                name: pod.name.clone(),
                labels,
                annotations: pc.annotations.clone(),
                ..Default::default()
            },
            spec,
        };
        serde_yaml::to_string(&doc)
            .map_err(|e| Error::Record(format!("pod {} as YAML: {e}", pod.name)))
    }

    fn generate_container(
        &self,
        pod: &str,
        r: &ContainerRecord,
        volumes: &mut BTreeMap<String, Volume>,
    ) -> Result<Container> {
        let c = &r.config;
        let name = match c.labels.get(super::LABEL_CONTAINER) {
            Some(n) => n.clone(),
            None => k8s_name(
                r.name
                    .strip_prefix(&format!("{pod}-"))
                    .unwrap_or(r.name.as_str()),
            ),
        };
        // What the image sets is left out (play gets it from the image again).
        let ic = self
            .images
            .resolve(&c.image_id)
            .ok()
            .and_then(|rec| self.images.image(&rec).ok())
            .and_then(|img| img.config.config().clone())
            .unwrap_or_default();
        let image_env = ic.env().clone().unwrap_or_default();
        let image_wd = ic.working_dir().clone().unwrap_or_default();
        let image_ep = ic.entrypoint().clone().unwrap_or_default();
        let image_cmd = ic.cmd().clone().unwrap_or_default();
        let env = c
            .env
            .iter()
            .filter(|e| !image_env.contains(e))
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| EnvVar {
                name: k.into(),
                value: Some(v.into()),
                value_from: None,
            })
            .collect();
        let (command, args) = if c.entrypoint == image_ep && c.cmd == image_cmd {
            (None, None)
        } else if c.entrypoint == image_ep && !c.cmd.is_empty() {
            (None, Some(c.cmd.clone()))
        } else {
            let all: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
            (Some(all), None)
        };
        let mut limits = BTreeMap::new();
        if let Some(m) = c.memory {
            limits.insert("memory".into(), quantity::bytes_text(m).into());
        }
        if let Some(cpu) = c.cpus {
            limits.insert("cpu".into(), quantity::cpus_text(cpu).into());
        }
        let mut sc = SecurityContext::default();
        let mut any = false;
        let (u, g) = match c.user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (c.user.as_str(), None),
        };
        if let Ok(uid) = u.parse::<i64>() {
            sc.run_as_user = Some(uid);
            any = true;
        }
        if let Some(gid) = g.and_then(|g| g.parse::<i64>().ok()) {
            sc.run_as_group = Some(gid);
            any = true;
        }
        if c.privileged {
            sc.privileged = Some(true);
            any = true;
        }
        if c.read_only {
            sc.read_only_root_filesystem = Some(true);
            any = true;
        }
        if c.no_new_privileges {
            sc.allow_privilege_escalation = Some(false);
            any = true;
        }
        if !c.cap_add.is_empty() || !c.cap_drop.is_empty() {
            sc.capabilities = Some(Capabilities {
                add: c.cap_add.clone(),
                drop: c.cap_drop.clone(),
            });
            any = true;
        }
        match c.seccomp.as_deref() {
            None => {}
            Some("unconfined") => {
                sc.seccomp_profile = Some(SeccompProfile {
                    kind: "Unconfined".into(),
                    localhost_profile: None,
                });
                any = true;
            }
            Some(path) => {
                sc.seccomp_profile = Some(SeccompProfile {
                    kind: "Localhost".into(),
                    localhost_profile: Some(path.into()),
                });
                any = true;
            }
        }
        let mut mounts = Vec::new();
        for m in &c.mounts {
            let anonymous = m.kind == "volume"
                && self
                    .db
                    .volume(&m.source)
                    .map(|v| v.anonymous)
                    .unwrap_or(true);
            let vname = if anonymous {
                format!("{name}-{}", k8s_name(&m.destination))
            } else {
                k8s_name(&m.source)
            };
            let vol = if m.kind == "bind" {
                Volume {
                    name: vname.clone(),
                    host_path: Some(HostPath {
                        path: m.source.clone(),
                        kind: None,
                    }),
                    ..Default::default()
                }
            } else if anonymous {
                Volume {
                    name: vname.clone(),
                    empty_dir: Some(EmptyDir::default()),
                    ..Default::default()
                }
            } else {
                Volume {
                    name: vname.clone(),
                    persistent_volume_claim: Some(ClaimVolume {
                        claim_name: m.source.clone(),
                        read_only: false,
                    }),
                    ..Default::default()
                }
            };
            volumes.entry(vname.clone()).or_insert(vol);
            mounts.push(super::objects::VolumeMount {
                name: vname,
                mount_path: m.destination.clone(),
                read_only: m.readonly,
                ..Default::default()
            });
        }
        Ok(Container {
            name,
            image: c.image.clone(),
            command,
            args,
            working_dir: (c.working_dir != image_wd && !c.working_dir.is_empty())
                .then(|| c.working_dir.clone()),
            env,
            resources: (!limits.is_empty()).then(|| Resources {
                limits,
                ..Default::default()
            }),
            volume_mounts: mounts,
            security_context: any.then_some(sc),
            stdin: c.open_stdin,
            tty: c.tty,
            ..Default::default()
        })
    }
}
