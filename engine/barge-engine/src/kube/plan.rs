//! A YAML stream into what `kube play` will make: pods (one per Pod, `replicas` per
//! Deployment) with their configuration, the files of their ConfigMap, Secret and emptyDir
//! volumes, their containers' configurations, and the named volumes of the claims. All the
//! checks that need no image happen here, before anything is made; every problem is
//! reported at once, each naming its document and field.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{self, Findings, Place};
use super::data::{self, Kind, Sources};
use super::objects::{Container, ObjectMeta, PodSecurityContext, PodSpec, SecurityContext, Volume};
use super::parse::{Doc, Object};
use crate::config::{ContainerConfig, RestartPolicy};
use crate::error::{Error, Result};
use crate::network::ports::PortSpec;
use crate::pod::{PodConfig, PodDns, PodMetadata};
use crate::pull::PullPolicy;

/// Everything one play makes.
#[derive(Debug, Default)]
pub struct Plan {
    pub pods: Vec<PodPlan>,
    /// Named volumes for the claims (PersistentVolumeClaim documents and the claims pods
    /// name), each once, in the order met.
    pub claims: Vec<String>,
    pub warnings: Vec<String>,
}

/// One pod to make.
#[derive(Debug)]
pub struct PodPlan {
    pub place: Place,
    pub config: PodConfig,
    /// Volumes that are directories in the pod's directory (ConfigMap, Secret, emptyDir).
    pub dirs: Vec<DirVolume>,
    /// hostPath directories to create (`DirectoryOrCreate`).
    pub host_dirs: Vec<String>,
    /// Init containers first, in order, then the others.
    pub containers: Vec<CtrPlan>,
}

/// A volume made of files in the pod's directory.
#[derive(Debug)]
pub struct DirVolume {
    pub name: String,
    /// (relative path, content, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
}

/// Where a container's mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A [`DirVolume`] of the pod, by name.
    Dir(String),
    /// A named volume (a claim).
    Claim(String),
    /// A host path.
    Host(String),
}

#[derive(Debug, Clone)]
pub struct PlannedMount {
    pub source: Source,
    pub sub_path: Option<String>,
    pub destination: String,
    pub readonly: bool,
}

/// One container to make.
#[derive(Debug)]
pub struct CtrPlan {
    pub place: Place,
    /// `containers[i]` / `initContainers[i]`, for messages.
    pub path: String,
    /// Its barge name (`<pod>-<container>`).
    pub name: String,
    /// `--entrypoint` (None: the image's).
    pub entrypoint: Option<Vec<String>>,
    /// The command (empty: the image's Cmd).
    pub cmd: Vec<String>,
    pub config: ContainerConfig,
    pub mounts: Vec<PlannedMount>,
    pub pull: PullPolicy,
    /// runAsGroup without runAsUser: the image's user with this group (known after the pull).
    pub group_only: Option<i64>,
    /// runAsNonRoot without runAsUser: the image's user must not be root.
    pub non_root: bool,
}

impl CtrPlan {
    /// Finish the user from the image's (`USER`): runAsGroup alone, runAsNonRoot.
    pub fn finish_user(&mut self, image_user: &str) -> std::result::Result<(), String> {
        let image_uid = image_user.split(':').next().unwrap_or_default();
        if let Some(g) = self.group_only {
            let u = if image_uid.is_empty() { "0" } else { image_uid };
            self.config.user = format!("{u}:{g}");
        }
        if self.non_root && matches!(image_uid, "" | "0" | "root") {
            return Err(format!(
                "{}: securityContext.runAsNonRoot: the image {} runs as root (set runAsUser)",
                self.path, self.config.image
            ));
        }
        Ok(())
    }
}

/// The plan for a parsed stream (BadParameter listing every problem).
pub fn plan(docs: &[Doc]) -> Result<Plan> {
    let mut f = Findings::default();
    let mut sources = Sources::default();
    let mut out = Plan::default();
    let mut claims = BTreeSet::new();
    for d in docs {
        let p = &d.place;
        match &d.object {
            Object::ConfigMap(c) => {
                f.extra(p, "", &c.other, &[check::TOP, &["immutable"]].concat(), &[]);
                meta(p, &c.metadata, &mut f);
                sources.add_config_map(p, &namespace(&c.metadata), c, &mut f);
            }
            Object::Secret(s) => {
                f.extra(
                    p,
                    "",
                    &s.other,
                    &[check::TOP, &["immutable", "type"]].concat(),
                    &[],
                );
                meta(p, &s.metadata, &mut f);
                sources.add_secret(p, &namespace(&s.metadata), s, &mut f);
            }
            Object::Claim(c) => {
                f.extra(p, "", &c.other, check::TOP, &[]);
                meta(p, &c.metadata, &mut f);
                f.extra(
                    p,
                    "spec",
                    &c.spec.other,
                    &[
                        "accessModes",
                        "resources",
                        "storageClassName",
                        "volumeName",
                        "selector",
                        "dataSource",
                        "dataSourceRef",
                        "volumeAttributesClassName",
                    ],
                    &[],
                );
                if c.spec
                    .volume_mode
                    .as_deref()
                    .is_some_and(|m| m != "Filesystem")
                {
                    f.refuse(
                        p,
                        "spec.volumeMode",
                        "only Filesystem claims (named volumes)",
                    );
                }
                claim(
                    p,
                    "metadata.name",
                    &c.metadata.name,
                    &mut out.claims,
                    &mut claims,
                    &mut f,
                );
            }
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    for d in docs {
        let p = &d.place;
        match &d.object {
            Object::Pod(doc) => {
                f.extra(p, "", &doc.other, check::TOP, &[]);
                meta(p, &doc.metadata, &mut f);
                let ns = namespace(&doc.metadata);
                let made = PodInput {
                    place: p,
                    ns: &ns,
                    kind: "Pod",
                    owner: &doc.metadata.name,
                    name: &doc.metadata.name,
                    meta: &doc.metadata,
                    spec: &doc.spec,
                    spec_path: "spec",
                };
                if let Some(pp) = pod(&made, &sources, &mut out.claims, &mut claims, &mut f) {
                    if !names.insert(pp.config.name.clone()) {
                        f.refuse(p, "metadata.name", "a second pod of this name in the YAML");
                    }
                    out.pods.push(pp);
                }
            }
            Object::Deployment(doc) => {
                f.extra(p, "", &doc.other, check::TOP, &[]);
                meta(p, &doc.metadata, &mut f);
                let s = &doc.spec;
                f.extra(p, "spec", &s.other, check::DEPLOYMENT_SPEC_QUIET, &[]);
                f.extra(p, "spec.template", &s.template.other, &[], &[]);
                meta(p, &s.template.metadata, &mut f);
                let labels = &s.template.metadata.labels;
                if let Some(sel) = &s.selector {
                    f.extra(p, "spec.selector", &sel.other, &[], &[]);
                    if !sel.match_expressions.is_empty() {
                        f.refuse(
                            p,
                            "spec.selector.matchExpressions",
                            "not supported (use matchLabels)",
                        );
                    }
                    for (k, v) in &sel.match_labels {
                        if labels.get(k) != Some(v) {
                            f.refuse(
                                p,
                                "spec.selector.matchLabels",
                                format!("{k}={v} does not match the template's labels"),
                            );
                        }
                    }
                }
                let replicas = s.replicas.unwrap_or(1);
                if replicas > 1
                    && s.template
                        .spec
                        .containers
                        .iter()
                        .any(|c| c.ports.iter().any(|p| p.host_port.unwrap_or(0) != 0))
                {
                    f.refuse(
                        p,
                        "spec.template.spec.containers[].ports[].hostPort",
                        format!("{replicas} replicas cannot all hold the same host port"),
                    );
                }
                if s.template
                    .spec
                    .restart_policy
                    .as_deref()
                    .unwrap_or("Always")
                    != "Always"
                {
                    f.refuse(
                        p,
                        "spec.template.spec.restartPolicy",
                        "a Deployment's pods restart Always",
                    );
                }
                let ns = namespace(&doc.metadata);
                for n in 0..replicas {
                    let name = format!("{}-pod-{n}", doc.metadata.name);
                    let made = PodInput {
                        place: p,
                        ns: &ns,
                        kind: "Deployment",
                        owner: &doc.metadata.name,
                        name: &name,
                        meta: &s.template.metadata,
                        spec: &s.template.spec,
                        spec_path: "spec.template.spec",
                    };
                    if let Some(pp) = pod(&made, &sources, &mut out.claims, &mut claims, &mut f) {
                        if !names.insert(pp.config.name.clone()) {
                            f.refuse(p, "metadata.name", format!("pod {name} is made twice"));
                        }
                        out.pods.push(pp);
                    }
                }
            }
            _ => {}
        }
    }
    out.warnings = dedup(f.warnings);
    let errors = dedup(f.errors);
    if !errors.is_empty() {
        return Err(Error::BadParameter(errors.join("; ")));
    }
    Ok(out)
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

fn namespace(m: &ObjectMeta) -> String {
    if m.namespace.is_empty() {
        "default".into()
    } else {
        m.namespace.clone()
    }
}

fn meta(p: &Place, m: &ObjectMeta, f: &mut Findings) {
    if m.other.contains_key("generateName") {
        f.refuse(p, "metadata.generateName", "give metadata.name");
    }
    f.extra(p, "metadata", &m.other, check::META, &[]);
}

fn claim(
    p: &Place,
    path: &str,
    name: &str,
    order: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
    f: &mut Findings,
) {
    if crate::volumes::validate_name(name).is_err() {
        f.refuse(p, path, format!("{name:?} is not a valid volume name"));
    } else if seen.insert(name.to_string()) {
        order.push(name.to_string());
    }
}

/// One pod to translate (a Pod, or one replica of a Deployment).
struct PodInput<'a> {
    place: &'a Place,
    ns: &'a str,
    kind: &'static str,
    /// The Pod's or Deployment's name.
    owner: &'a str,
    /// The pod's name.
    name: &'a str,
    meta: &'a ObjectMeta,
    spec: &'a PodSpec,
    spec_path: &'static str,
}

/// What a volume of the pod is.
enum VolKind {
    Dir,
    Claim(String, bool),
    Host(String),
}

fn pod(
    i: &PodInput,
    sources: &Sources,
    claim_order: &mut Vec<String>,
    claims: &mut BTreeSet<String>,
    f: &mut Findings,
) -> Option<PodPlan> {
    let p = i.place;
    let sp = i.spec_path;
    let s = i.spec;
    let at = |x: &str| format!("{sp}.{x}");
    f.extra(
        p,
        sp,
        &s.other,
        check::POD_SPEC_QUIET,
        check::POD_SPEC_WARNED,
    );
    if crate::names::validate(i.name).is_err() {
        f.refuse(
            p,
            "metadata.name",
            format!("{:?} is not a valid pod name", i.name),
        );
    }
    if s.host_pid {
        f.refuse(
            p,
            &at("hostPID"),
            "not supported (pods have their own PID namespaces)",
        );
    }
    if s.containers.is_empty() {
        f.refuse(p, &at("containers"), "a pod needs at least one container");
    }
    let restart = match s.restart_policy.as_deref() {
        None | Some("Always") => RestartPolicy::Always,
        Some("OnFailure") => RestartPolicy::OnFailure { max_retries: 0 },
        Some("Never") => RestartPolicy::No,
        Some(other) => {
            f.refuse(
                p,
                &at("restartPolicy"),
                format!("{other:?}: use Always, OnFailure or Never"),
            );
            RestartPolicy::Always
        }
    };
    let mut labels = i.meta.labels.clone();
    labels.insert(super::LABEL_KIND.into(), i.kind.into());
    labels.insert(super::LABEL_NAME.into(), i.owner.into());
    labels.insert(super::LABEL_NAMESPACE.into(), i.ns.into());
    let mut config = PodConfig {
        name: Some(i.name.to_string()),
        metadata: PodMetadata {
            name: i.name.to_string(),
            namespace: i.ns.to_string(),
            ..Default::default()
        },
        hostname: s.hostname.clone().unwrap_or_default(),
        labels,
        annotations: i.meta.annotations.clone(),
        network: if s.host_network {
            "host".into()
        } else {
            String::new()
        },
        share: crate::pod::PodShare {
            ipc: !s.host_ipc,
            // hostNetwork pods have the host's hostname (its UTS namespace), as in Kubernetes.
            uts: !s.host_network,
            pid: s.share_process_namespace == Some(true),
            ..Default::default()
        },
        host_ipc: s.host_ipc,
        ..Default::default()
    };
    if let Some(d) = &s.dns_config {
        f.extra(p, &at("dnsConfig"), &d.other, &[], &[]);
        config.dns = PodDns {
            servers: d.nameservers.clone(),
            searches: d.searches.clone(),
            options: d
                .options
                .iter()
                .map(|o| match &o.value {
                    Some(v) => format!("{}:{v}", o.name),
                    None => o.name.clone(),
                })
                .collect(),
        };
    }
    for a in &s.host_aliases {
        for h in &a.hostnames {
            config.extra_hosts.push(format!("{h}:{}", a.ip));
        }
    }
    let psc = s.security_context.clone().unwrap_or_default();
    f.extra(
        p,
        &at("securityContext"),
        &psc.other,
        &["windowsOptions", "fsGroupChangePolicy"],
        &["seLinuxOptions", "appArmorProfile"],
    );
    for sc in &psc.sysctls {
        config.sysctls.insert(sc.name.clone(), sc.value.clone());
    }
    // Volumes.
    let mut vols: BTreeMap<String, VolKind> = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut host_dirs = Vec::new();
    for (n, v) in s.volumes.iter().enumerate() {
        let vp = at(&format!("volumes[{n}]"));
        if let Some(k) = volume(p, &vp, i.ns, v, sources, &mut dirs, &mut host_dirs, f) {
            if let VolKind::Claim(c, _) = &k {
                claim(
                    p,
                    &format!("{vp}.persistentVolumeClaim.claimName"),
                    c,
                    claim_order,
                    claims,
                    f,
                );
            }
            if vols.insert(v.name.clone(), k).is_some() {
                f.refuse(
                    p,
                    &format!("{vp}.name"),
                    format!("a second volume {:?}", v.name),
                );
            }
        }
    }
    // Containers.
    let mut containers = Vec::new();
    let mut ctr_names = BTreeSet::new();
    let grace = s
        .termination_grace_period_seconds
        .map(|g| u32::try_from(g.max(0)).unwrap_or(u32::MAX));
    let all = s
        .init_containers
        .iter()
        .enumerate()
        .map(|(n, c)| (format!("initContainers[{n}]"), c, true))
        .chain(
            s.containers
                .iter()
                .enumerate()
                .map(|(n, c)| (format!("containers[{n}]"), c, false)),
        );
    for (cpath, c, init) in all {
        let cpath = at(&cpath);
        if !ctr_names.insert(c.name.clone()) {
            f.refuse(
                p,
                &format!("{cpath}.name"),
                format!("a second container {:?}", c.name),
            );
        }
        let input = CtrInput {
            pod: i,
            path: &cpath,
            c,
            init,
            restart,
            grace,
            psc: &psc,
            vols: &vols,
            sources,
        };
        if let Some(cp) = container(&input, &mut config.ports, f) {
            containers.push(cp);
        }
    }
    Some(PodPlan {
        place: p.clone(),
        config,
        dirs,
        host_dirs,
        containers,
    })
}

#[allow(clippy::too_many_arguments)]
fn volume(
    p: &Place,
    vp: &str,
    ns: &str,
    v: &Volume,
    sources: &Sources,
    dirs: &mut Vec<DirVolume>,
    host_dirs: &mut Vec<String>,
    f: &mut Findings,
) -> Option<VolKind> {
    f.extra(p, vp, &v.other, &[], &[]);
    let name_ok = v.name.len() <= 63
        && v.name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !name_ok {
        f.refuse(
            p,
            &format!("{vp}.name"),
            format!("{:?} is not a valid volume name", v.name),
        );
        return None;
    }
    let given = [
        v.config_map.is_some(),
        v.secret.is_some(),
        v.persistent_volume_claim.is_some(),
        v.empty_dir.is_some(),
        v.host_path.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        if v.other.is_empty() {
            f.refuse(
                p,
                vp,
                "a volume needs exactly one of configMap, secret, persistentVolumeClaim, emptyDir, hostPath",
            );
        }
        return None;
    }
    let mut files = |kind: Kind, name: &str, items, mode: Option<u32>, default, optional| {
        let mode = mode.unwrap_or(default);
        if mode > 0o777 {
            f.refuse(
                p,
                &format!("{vp}.defaultMode"),
                format!("{mode:#o} is not a file mode"),
            );
            return None;
        }
        match sources.files(kind, ns, name, items, mode, optional) {
            Ok(fs) => {
                dirs.push(DirVolume {
                    name: v.name.clone(),
                    files: fs,
                });
                Some(VolKind::Dir)
            }
            Err(e) => {
                f.refuse(p, vp, e);
                None
            }
        }
    };
    if let Some(c) = &v.config_map {
        return files(
            Kind::ConfigMap,
            &c.name,
            &c.items,
            c.default_mode,
            0o644,
            c.optional,
        );
    }
    if let Some(s) = &v.secret {
        return files(
            Kind::Secret,
            &s.secret_name,
            &s.items,
            s.default_mode,
            0o400,
            s.optional,
        );
    }
    if let Some(c) = &v.persistent_volume_claim {
        return Some(VolKind::Claim(c.claim_name.clone(), c.read_only));
    }
    if let Some(e) = &v.empty_dir {
        match e.medium.as_deref() {
            None | Some("") => {}
            Some(m) => {
                f.refuse(
                    p,
                    &format!("{vp}.emptyDir.medium"),
                    format!("{m:?} is not supported (only the default, disk)"),
                );
                return None;
            }
        }
        if e.size_limit.is_some() {
            f.warn(
                p,
                &format!("{vp}.emptyDir.sizeLimit"),
                "ignored (no size limit on barge's emptyDir)",
            );
        }
        dirs.push(DirVolume {
            name: v.name.clone(),
            files: Vec::new(),
        });
        return Some(VolKind::Dir);
    }
    let h = v.host_path.as_ref()?;
    let hp = format!("{vp}.hostPath");
    if !h.path.starts_with('/') || h.path.split('/').any(|c| c == "..") {
        f.refuse(
            p,
            &format!("{hp}.path"),
            format!("{:?} must be an absolute path without \"..\"", h.path),
        );
        return None;
    }
    let path = std::path::Path::new(&h.path);
    let kind = h.kind.as_deref().unwrap_or("");
    let ok = match kind {
        "" => true,
        "DirectoryOrCreate" => {
            if !path.exists() {
                host_dirs.push(h.path.clone());
            }
            !path.exists() || path.is_dir()
        }
        "Directory" => path.is_dir(),
        "FileOrCreate" | "File" => path.is_file() || (kind == "FileOrCreate" && !path.exists()),
        "Socket" | "CharDevice" | "BlockDevice" => {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(path).is_ok_and(|m| {
                let t = m.file_type();
                match kind {
                    "Socket" => t.is_socket(),
                    "CharDevice" => t.is_char_device(),
                    _ => t.is_block_device(),
                }
            })
        }
        other => {
            f.refuse(
                p,
                &format!("{hp}.type"),
                format!("{other:?} is not a hostPath type"),
            );
            return None;
        }
    };
    if kind == "FileOrCreate" && !path.exists() {
        f.refuse(
            p,
            &format!("{hp}.type"),
            "FileOrCreate of a missing file is not supported (create it first)",
        );
        return None;
    }
    if !ok {
        f.refuse(
            p,
            &format!("{hp}.path"),
            format!("{} is not a {kind} on this host", h.path),
        );
        return None;
    }
    Some(VolKind::Host(h.path.clone()))
}

/// One container to translate.
struct CtrInput<'a> {
    pod: &'a PodInput<'a>,
    path: &'a str,
    c: &'a Container,
    init: bool,
    restart: RestartPolicy,
    grace: Option<u32>,
    psc: &'a PodSecurityContext,
    vols: &'a BTreeMap<String, VolKind>,
    sources: &'a Sources,
}

fn container(i: &CtrInput, ports: &mut Vec<PortSpec>, f: &mut Findings) -> Option<CtrPlan> {
    let p = i.pod.place;
    let c = i.c;
    let at = |x: &str| format!("{}.{x}", i.path);
    f.extra(
        p,
        i.path,
        &c.other,
        check::CONTAINER_QUIET,
        check::CONTAINER_WARNED,
    );
    if c.name.is_empty() {
        f.refuse(p, &at("name"), "a container needs a name");
        return None;
    }
    let name = format!("{}-{}", i.pod.name, c.name);
    if crate::names::validate(&name).is_err() {
        f.refuse(
            p,
            &at("name"),
            format!("{:?} is not a valid container name", c.name),
        );
    }
    if c.image.is_empty() {
        f.refuse(p, &at("image"), "a container needs an image");
    }
    let pull = match c.image_pull_policy.as_deref() {
        None | Some("IfNotPresent") => PullPolicy::Missing,
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some(o) => {
            f.refuse(
                p,
                &at("imagePullPolicy"),
                format!("{o:?}: use Always, IfNotPresent or Never"),
            );
            PullPolicy::Missing
        }
    };
    // Environment: envFrom, then env (later wins); $(VAR) refers to earlier ones.
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(x, _)| *x != k);
        env.push((k, v));
    };
    for (n, ef) in c.env_from.iter().enumerate() {
        let ep = at(&format!("envFrom[{n}]"));
        let (kind, r) = match (&ef.config_map_ref, &ef.secret_ref) {
            (Some(r), None) => (Kind::ConfigMap, r),
            (None, Some(r)) => (Kind::Secret, r),
            _ => {
                f.refuse(p, &ep, "give one of configMapRef or secretRef");
                continue;
            }
        };
        match i.sources.get(kind, i.pod.ns, &r.name) {
            None if r.optional => {}
            None => f.refuse(
                p,
                &ep,
                format!("{} {} is not in the YAML", kind.as_str(), r.name),
            ),
            Some(data) => {
                for (k, v) in data {
                    match String::from_utf8(v.clone()) {
                        Ok(v) => set(&mut env, format!("{}{k}", ef.prefix), v),
                        Err(_) => f.refuse(
                            p,
                            &ep,
                            format!("key {k:?} of {} {} is not text", kind.as_str(), r.name),
                        ),
                    }
                }
            }
        }
    }
    for (n, e) in c.env.iter().enumerate() {
        let ep = at(&format!("env[{n}]"));
        if e.name.is_empty() || e.name.contains('=') {
            f.refuse(
                p,
                &format!("{ep}.name"),
                format!("{:?} is not a variable name", e.name),
            );
            continue;
        }
        let value = match (&e.value, &e.value_from) {
            (_, None) => Some(expand(e.value.as_deref().unwrap_or_default(), &env)),
            (None, Some(src)) => {
                f.extra(p, &format!("{ep}.valueFrom"), &src.other, &[], &[]);
                env_source(i, &ep, src, f)
            }
            (Some(_), Some(_)) => {
                f.refuse(p, &ep, "give value or valueFrom, not both");
                None
            }
        };
        if let Some(v) = value {
            set(&mut env, e.name.clone(), v);
        }
    }
    let command = c
        .command
        .as_ref()
        .map(|v| v.iter().map(|s| expand(s, &env)).collect::<Vec<_>>());
    let args = c
        .args
        .as_ref()
        .map(|v| v.iter().map(|s| expand(s, &env)).collect::<Vec<_>>());
    // Kubernetes: command replaces the image's entrypoint and, without args, its Cmd too.
    let (entrypoint, cmd) = match (command, args) {
        (Some(cmd), None) => (Some(Vec::new()), cmd),
        (Some(e), Some(a)) => (Some(e), a),
        (None, Some(a)) => (None, a),
        (None, None) => (None, Vec::new()),
    };
    let mut labels = BTreeMap::new();
    labels.insert(super::LABEL_CONTAINER.to_string(), c.name.clone());
    let mut config = ContainerConfig {
        image: c.image.clone(),
        env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        labels,
        tty: c.tty,
        open_stdin: c.stdin,
        restart: if i.init { RestartPolicy::No } else { i.restart },
        stop_timeout: i.grace,
        init_container: i.init,
        ..Default::default()
    };
    // Ports: a hostPort publishes containerPort on the pod.
    for (n, port) in c.ports.iter().enumerate() {
        let pp = at(&format!("ports[{n}]"));
        if port.container_port == 0 {
            f.refuse(
                p,
                &format!("{pp}.containerPort"),
                "a port needs a containerPort",
            );
            continue;
        }
        let proto = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => "tcp",
            "UDP" => "udp",
            "SCTP" => "sctp",
            o => {
                f.refuse(
                    p,
                    &format!("{pp}.protocol"),
                    format!("{o:?}: use TCP, UDP or SCTP"),
                );
                continue;
            }
        };
        let host_ip = match port.host_ip.as_deref().unwrap_or("") {
            "" => String::new(),
            ip => match ip.parse::<std::net::IpAddr>() {
                Ok(a) => a.to_string(),
                Err(_) => {
                    f.refuse(
                        p,
                        &format!("{pp}.hostIP"),
                        format!("{ip:?} is not an IP address"),
                    );
                    continue;
                }
            },
        };
        match port.host_port {
            Some(h) if h != 0 => {
                if i.init {
                    f.refuse(
                        p,
                        &format!("{pp}.hostPort"),
                        "init containers publish no ports",
                    );
                    continue;
                }
                ports.push(PortSpec {
                    host_ip,
                    host_port: h,
                    host_port_end: 0,
                    container_port: port.container_port,
                    proto: proto.into(),
                });
            }
            _ => config
                .exposed
                .push(format!("{}/{proto}", port.container_port)),
        }
    }
    // Resources: limits are enforced; requests (scheduling) are not.
    if let Some(r) = &c.resources {
        f.extra(p, &at("resources"), &r.other, &[], &[]);
        for (k, v) in &r.limits {
            let lp = at(&format!("resources.limits.{k}"));
            match k.as_str() {
                "memory" => match super::quantity::bytes(v) {
                    Ok(b) => config.memory = Some(b),
                    Err(e) => f.refuse(p, &lp, e),
                },
                "cpu" => match super::quantity::cpus(v) {
                    Ok(c) => {
                        // A limit above the node's CPUs limits nothing (docker refuses it).
                        let online = crate::validate::online_cpus() as f64;
                        if c > online {
                            f.warn(p, &lp, format!("{c} CPUs is more than this node's {online}: limited to {online}"));
                        }
                        config.cpus = Some(c.min(online));
                    }
                    Err(e) => f.refuse(p, &lp, e),
                },
                "ephemeral-storage" => f.warn(p, &lp, "ignored (no storage limits)"),
                _ => f.refuse(p, &lp, "not supported (barge limits cpu and memory)"),
            }
        }
    }
    // Security context (the container's over the pod's).
    let sc = c.security_context.clone().unwrap_or_default();
    let (group_only, non_root) = security(i, &at("securityContext"), &sc, &mut config, f);
    // Mounts.
    let mut mounts = Vec::new();
    for (n, m) in c.volume_mounts.iter().enumerate() {
        let mp = at(&format!("volumeMounts[{n}]"));
        for (k, v) in &m.other {
            let fine = k == "mountPropagation" && v.as_str() == Some("None");
            if !fine {
                f.refuse(
                    p,
                    &format!("{mp}.{k}"),
                    "not supported by barge's kube play",
                );
            }
        }
        if !m.mount_path.starts_with('/') || m.mount_path.split('/').any(|c| c == "..") {
            f.refuse(
                p,
                &format!("{mp}.mountPath"),
                format!("{:?} must be an absolute path without \"..\"", m.mount_path),
            );
            continue;
        }
        if let Some(sub) = &m.sub_path {
            if !data::relative_path_ok(sub) {
                f.refuse(
                    p,
                    &format!("{mp}.subPath"),
                    format!("{sub:?} must be a relative path without \"..\""),
                );
                continue;
            }
        }
        let (source, readonly) = match i.vols.get(&m.name) {
            None => {
                f.refuse(
                    p,
                    &format!("{mp}.name"),
                    format!("no volume {:?} in the pod", m.name),
                );
                continue;
            }
            Some(VolKind::Dir) => (Source::Dir(m.name.clone()), m.read_only),
            Some(VolKind::Claim(c, ro)) => {
                if m.sub_path.is_some() {
                    f.refuse(
                        p,
                        &format!("{mp}.subPath"),
                        "not supported on a persistentVolumeClaim",
                    );
                    continue;
                }
                (Source::Claim(c.clone()), m.read_only || *ro)
            }
            Some(VolKind::Host(h)) => (Source::Host(h.clone()), m.read_only),
        };
        // ConfigMap and Secret volumes are read-only in Kubernetes.
        let dir_ro = matches!(source, Source::Dir(_))
            && i.pod
                .spec
                .volumes
                .iter()
                .any(|v| v.name == m.name && (v.config_map.is_some() || v.secret.is_some()));
        mounts.push(PlannedMount {
            source,
            sub_path: m.sub_path.clone(),
            destination: m.mount_path.clone(),
            readonly: readonly || dir_ro,
        });
    }
    // The engine's own checks of limits, mounts and capabilities, now rather than midway.
    let mut probe = config.clone();
    if let Err(e) = crate::validate::request(&mut probe) {
        f.refuse(p, i.path, e);
    }
    if let Err(e) = crate::spec::capabilities(&probe) {
        f.refuse(p, &at("securityContext.capabilities"), e);
    }
    Some(CtrPlan {
        place: p.clone(),
        path: format!("{} {}", p, i.path),
        name,
        entrypoint,
        cmd,
        config,
        mounts,
        pull,
        group_only,
        non_root,
    })
}

/// `valueFrom`: a ConfigMap or Secret key, or a field of the pod.
fn env_source(
    i: &CtrInput,
    ep: &str,
    src: &super::objects::EnvVarSource,
    f: &mut Findings,
) -> Option<String> {
    let p = i.pod.place;
    let keyref = match (&src.config_map_key_ref, &src.secret_key_ref, &src.field_ref) {
        (Some(r), None, None) => Some((Kind::ConfigMap, r)),
        (None, Some(r), None) => Some((Kind::Secret, r)),
        (None, None, Some(_)) => None,
        _ => {
            if src.other.is_empty() {
                f.refuse(
                    p,
                    &format!("{ep}.valueFrom"),
                    "give one of configMapKeyRef, secretKeyRef, fieldRef",
                );
            }
            return None;
        }
    };
    if let Some((kind, r)) = keyref {
        return match i
            .sources
            .env_value(kind, i.pod.ns, &r.name, &r.key, r.optional)
        {
            Ok(v) => v,
            Err(e) => {
                f.refuse(p, &format!("{ep}.valueFrom"), e);
                None
            }
        };
    }
    let field = src.field_ref.as_ref()?.field_path.as_str();
    let quoted = |prefix: &str| {
        field
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    let value = match field {
        "metadata.name" => Some(i.pod.name.to_string()),
        "metadata.namespace" => Some(i.pod.ns.to_string()),
        "spec.nodeName" => nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned()),
        _ => {
            if let Some(k) = quoted("metadata.labels['") {
                Some(i.pod.meta.labels.get(&k).cloned().unwrap_or_default())
            } else {
                quoted("metadata.annotations['")
                    .map(|k| i.pod.meta.annotations.get(&k).cloned().unwrap_or_default())
            }
        }
    };
    if value.is_none() {
        f.refuse(
            p,
            &format!("{ep}.valueFrom.fieldRef.fieldPath"),
            format!("{field:?} is not supported (metadata.name, metadata.namespace, metadata.labels['..'], metadata.annotations['..'], spec.nodeName)"),
        );
    }
    value
}

/// The security context onto `config`; returns (runAsGroup alone, runAsNonRoot unchecked).
fn security(
    i: &CtrInput,
    path: &str,
    sc: &SecurityContext,
    config: &mut ContainerConfig,
    f: &mut Findings,
) -> (Option<i64>, bool) {
    let p = i.pod.place;
    let psc = i.psc;
    f.extra(
        p,
        path,
        &sc.other,
        &["windowsOptions"],
        &["seLinuxOptions", "appArmorProfile", "procMount"],
    );
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    for (what, v) in [("runAsUser", uid), ("runAsGroup", gid)] {
        if v.is_some_and(|v| !(0..=i64::from(u32::MAX)).contains(&v)) {
            f.refuse(p, &format!("{path}.{what}"), "out of range");
        }
    }
    let mut group_only = None;
    match (uid, gid) {
        (Some(u), Some(g)) => config.user = format!("{u}:{g}"),
        (Some(u), None) => config.user = u.to_string(),
        (None, Some(g)) => group_only = Some(g),
        (None, None) => {}
    }
    let mut non_root = false;
    if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) {
        match uid {
            Some(0) => f.refuse(p, &format!("{path}.runAsNonRoot"), "runAsUser is 0"),
            Some(_) => {}
            None => non_root = true,
        }
    }
    config.privileged = sc.privileged.unwrap_or(false);
    config.read_only = sc.read_only_root_filesystem.unwrap_or(false);
    config.no_new_privileges = sc.allow_privilege_escalation == Some(false);
    if let Some(caps) = &sc.capabilities {
        config.cap_add = caps.add.clone();
        config.cap_drop = caps.drop.clone();
    }
    if let Some(s) = sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref()) {
        match (s.kind.as_str(), s.localhost_profile.as_deref()) {
            ("RuntimeDefault", _) => {}
            ("Unconfined", _) => config.seccomp = Some("unconfined".into()),
            ("Localhost", Some(prof)) if prof.starts_with('/') => {
                config.seccomp = Some(prof.to_string())
            }
            ("Localhost", _) => f.refuse(
                p,
                &format!("{path}.seccompProfile.localhostProfile"),
                "give the profile's absolute path",
            ),
            (other, _) => f.refuse(
                p,
                &format!("{path}.seccompProfile.type"),
                format!("{other:?}: use RuntimeDefault, Unconfined or Localhost"),
            ),
        }
    }
    (group_only, non_root)
}

/// Kubernetes' `$(VAR)` references to variables defined before; `$$` is a `$`; unknown
/// references stay as written.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::parse::documents;

    fn plan_of(yaml: &str) -> Result<Plan> {
        plan(&documents(yaml)?)
    }

    #[test]
    fn expands_references() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("a$", &env), "a$");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    #[test]
    fn deployment_into_pods() {
        let p = plan_of(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: prod}
data: {k: v}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      hostAliases: [{ip: 10.0.0.1, hostnames: [db]}]
      containers:
      - name: app
        image: bb
        command: [sh, -c]
        args: ["echo $(K)"]
        env: [{name: K, valueFrom: {configMapKeyRef: {name: cfg, key: k}}}]
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 100m}}
        securityContext: {runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        livenessProbe: {exec: {command: [true]}}
        volumeMounts: [{name: c, mountPath: /c}, {name: d, mountPath: /d}]
      volumes:
      - {name: c, configMap: {name: cfg}}
      - {name: d, persistentVolumeClaim: {claimName: data}}
"#,
        )
        .unwrap();
        assert_eq!(p.pods.len(), 2);
        assert_eq!(p.claims, vec!["data".to_string()]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("livenessProbe"), "{:?}", p.warnings);
        let pod = &p.pods[1];
        assert_eq!(pod.config.name.as_deref(), Some("web-pod-1"));
        assert_eq!(pod.config.labels[crate::kube::LABEL_NAME], "web");
        assert_eq!(pod.config.labels[crate::kube::LABEL_NAMESPACE], "prod");
        assert_eq!(pod.config.labels["app"], "web");
        assert_eq!(pod.config.extra_hosts, vec!["db:10.0.0.1".to_string()]);
        // A ConfigMap is in its namespace only: this one is in "default".
        let e = plan_of(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg, namespace: other}}\ndata: {{k: v}}\n---\n{}",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: bb, envFrom: [{configMapRef: {name: cfg}}]}]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("ConfigMap cfg is not in the YAML"), "{e}");
        let c = &pod.containers[0];
        assert_eq!(c.name, "web-pod-1-app");
        assert_eq!(c.entrypoint, Some(vec!["sh".to_string(), "-c".to_string()]));
        assert_eq!(c.cmd, vec!["echo v".to_string()]);
        assert_eq!(c.config.env, vec!["K=v".to_string()]);
        assert_eq!(c.config.memory, Some(64 << 20));
        assert_eq!(c.config.cpus, Some(0.5));
        assert_eq!(c.config.user, "1000");
        assert!(c.config.no_new_privileges);
        assert_eq!(c.config.stop_timeout, Some(5));
        assert_eq!(c.config.restart, RestartPolicy::Always);
        assert_eq!(c.config.exposed, vec!["80/tcp".to_string()]);
        assert_eq!(c.mounts.len(), 2);
        assert!(c.mounts[0].readonly, "ConfigMap volumes are read-only");
        assert_eq!(c.mounts[1].source, Source::Claim("data".into()));
        assert_eq!(
            pod.dirs[0].files,
            vec![("k".to_string(), b"v".to_vec(), 0o644)]
        );
    }

    #[test]
    fn command_without_args_drops_the_image_cmd() {
        let p = plan_of("apiVersion: v1\nkind: Pod\nmetadata: {name: pp}\nspec:\n  containers: [{name: c, image: bb, command: [sleep, '1']}]\n").unwrap();
        let c = &p.pods[0].containers[0];
        assert_eq!(c.entrypoint, Some(vec![]));
        assert_eq!(c.cmd, vec!["sleep".to_string(), "1".to_string()]);
    }

    #[test]
    fn every_problem_is_named() {
        let e = plan_of(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 2
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: y}}
    spec:
      restartPolicy: Never
      securityContext: {fsGroup: 10}
      containers:
      - name: c
        image: bb
        ports: [{containerPort: 80, hostPort: 8080}]
        resources: {limits: {nvidia.com/gpu: 1, memory: lots}}
        volumeMounts: [{name: nope, mountPath: /x}]
      - name: c
        image: ""
"#,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "document #1 (Deployment d): spec.selector.matchLabels: app=x does not match",
            "spec.template.spec.restartPolicy: a Deployment's pods restart Always",
            "hostPort: 2 replicas cannot all hold the same host port",
            "spec.template.spec.securityContext.fsGroup: not supported",
            "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu: not supported",
            "spec.template.spec.containers[0].resources.limits.memory: \"lots\" is not a quantity",
            "spec.template.spec.containers[0].volumeMounts[0].name: no volume \"nope\"",
            "spec.template.spec.containers[1].name: a second container \"c\"",
            "spec.template.spec.containers[1].image: a container needs an image",
        ] {
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        // Each problem once, whatever the replica count.
        assert_eq!(e.matches("fsGroup").count(), 1, "{e}");
    }

    #[test]
    fn run_as_non_root_needs_a_user() {
        let p = plan_of("apiVersion: v1\nkind: Pod\nmetadata: {name: pp}\nspec:\n  securityContext: {runAsNonRoot: true, runAsGroup: 5}\n  containers: [{name: c, image: bb}]\n").unwrap();
        let mut pods = p.pods;
        let c = &mut pods[0].containers[0];
        assert!(c.finish_user("").is_err());
        assert!(c.finish_user("app").is_ok());
        assert_eq!(c.config.user, "app:5");
    }
}

#[cfg(test)]
mod cpu_tests {
    use super::*;
    use crate::kube::parse::documents;

    #[test]
    fn cpu_limits_above_the_node_are_capped_with_a_warning() {
        let p = plan(
            &documents("apiVersion: v1\nkind: Pod\nmetadata: {name: pp}\nspec:\n  containers: [{name: c, image: bb, resources: {limits: {cpu: '4096'}}}]\n")
                .unwrap(),
        )
        .unwrap();
        let online = crate::validate::online_cpus() as f64;
        assert_eq!(p.pods[0].containers[0].config.cpus, Some(online));
        assert!(p.warnings[0].contains("limited to"), "{:?}", p.warnings);
    }
}
