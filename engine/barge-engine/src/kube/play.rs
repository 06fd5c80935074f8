//! Making what a [`Plan`] says, all or nothing: images pulled first, then the claims'
//! volumes, each pod with its files and containers, then the pods started. A failure at any
//! step removes what this play made (pods with their containers and files, volumes it
//! created) and returns the error. `down` removes what a play of the same YAML made, found
//! by the labels play put on it.

use std::collections::BTreeMap;

use super::parse;
use super::plan::{self, PodPlan, Source};
use super::{
    DownReport, KubeDownOptions, KubePlayOptions, PlayReport, PlayedContainer, PlayedPod,
    LABEL_CLAIM, LABEL_KIND, LABEL_NAME, LABEL_NAMESPACE,
};
use crate::config::MountSpec;
use crate::create::CreateOptions;
use crate::error::{Error, IoContext, Result};
use crate::pod::PodFilters;
use crate::pull::{PullNeed, PullOptions};
use crate::Engine;

/// What a play made so far (undone on failure).
#[derive(Default)]
struct Made {
    pods: Vec<String>,
    volumes: Vec<String>,
    host_dirs: Vec<std::path::PathBuf>,
}

impl Engine {
    /// Run Kubernetes YAML: Pods and Deployments as pods, ConfigMaps and Secrets as their
    /// env and volume files, PersistentVolumeClaims as named volumes. Bad or unsupported
    /// input is a BadParameter error naming the document and field, and nothing is made;
    /// a failure midway removes what this play made.
    pub fn kube_play(&self, yaml: &str, opts: &KubePlayOptions) -> Result<PlayReport> {
        let docs = parse::documents(yaml)?;
        let mut plan = plan::plan(&docs)?;
        // Images: pulled (policy per container) before anything is made.
        let mut pulled: BTreeMap<String, ()> = BTreeMap::new();
        for pod in &plan.pods {
            for c in &pod.containers {
                let need = self
                    .pull_needed(&c.config.image, c.pull)
                    .map_err(|e| Error::BadParameter(format!("{}: image: {e}", c.path)))?;
                if need != PullNeed::No && !pulled.contains_key(&c.config.image) {
                    self.pull(&c.config.image, &mut PullOptions::default())?;
                    pulled.insert(c.config.image.clone(), ());
                }
            }
        }
        for pod in plan.pods.iter_mut() {
            for c in pod.containers.iter_mut() {
                let rec = self.images.resolve(&c.config.image)?;
                let image = self.images.image(&rec)?;
                let user = image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|ic| ic.user().clone())
                    .unwrap_or_default();
                c.finish_user(&user).map_err(Error::BadParameter)?;
            }
        }
        // Every pod-level value (DNS, sysctls, hostname, ports, network) before anything is
        // made or, with --replace, removed.
        for pod in &plan.pods {
            self.pod_validate(&pod.config).map_err(|e| match e.kind() {
                crate::ErrorKind::BadParameter => {
                    Error::BadParameter(format!("{}: {e}", pod.place))
                }
                _ => e,
            })?;
        }
        if opts.replace {
            self.kube_down(yaml, &KubeDownOptions::default())?;
        }
        self.check_free_names(&plan.pods)?;
        let mut made = Made::default();
        match self.play_plan(&plan, opts, &mut made) {
            Ok(mut report) => {
                report.warnings = std::mem::take(&mut plan.warnings);
                Ok(report)
            }
            Err(e) => {
                self.unmake(&made);
                Err(e)
            }
        }
    }

    /// Pod and container names the plan needs must be free (a Conflict naming the first
    /// taken one).
    fn check_free_names(&self, pods: &[PodPlan]) -> Result<()> {
        for pod in pods {
            let name = pod.config.name.clone().unwrap_or_default();
            match self.db.find_pod(&name) {
                Ok(p) if p.name == name => {
                    return Err(Error::Conflict(format!(
                        "{}: pod {name} exists already (kube down it, or play with --replace)",
                        pod.place
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            for c in &pod.containers {
                if let Ok(r) = self.db.find(&c.name) {
                    if r.name == c.name {
                        return Err(Error::Conflict(format!(
                            "{}: container name {} is in use by container {}",
                            c.path,
                            c.name,
                            &r.id[..12.min(r.id.len())]
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn play_plan(
        &self,
        plan: &plan::Plan,
        opts: &KubePlayOptions,
        made: &mut Made,
    ) -> Result<PlayReport> {
        let mut report = PlayReport::default();
        for claim in &plan.claims {
            if self.db.volume(claim).is_err() {
                let mut labels = BTreeMap::new();
                labels.insert(LABEL_CLAIM.to_string(), claim.clone());
                self.volume_create(claim, labels, false)?;
                made.volumes.push(claim.clone());
            }
            report.volumes.push(claim.clone());
        }
        for pod in &plan.pods {
            report.pods.push(self.play_pod(pod, made)?);
        }
        if !opts.no_start {
            for pod in &report.pods {
                self.pod_start(&pod.id)?;
            }
        }
        Ok(report)
    }

    fn play_pod(&self, pod: &PodPlan, made: &mut Made) -> Result<PlayedPod> {
        for d in &pod.host_dirs {
            let p = std::path::PathBuf::from(d);
            if !p.exists() {
                std::fs::create_dir_all(&p).ctx("create hostPath directory", &p)?;
                made.host_dirs.push(p);
            }
        }
        let rec = self
            .pod_create(pod.config.clone())
            .map_err(|e| match e.kind() {
                crate::ErrorKind::BadParameter => {
                    Error::BadParameter(format!("{}: {e}", pod.place))
                }
                _ => e,
            })?;
        made.pods.push(rec.id.clone());
        let base = self.pod_dir(&rec.id).join("kube");
        for d in &pod.dirs {
            let dir = base.join(&d.name);
            std::fs::create_dir_all(&dir).ctx("create volume directory", &dir)?;
            for (rel, content, mode) in &d.files {
                let path = dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).ctx("create volume directory", parent)?;
                }
                barge_util::fs::write_atomic(
                    &path,
                    content,
                    *mode,
                    barge_util::fs::Durability::Durable,
                )
                .ctx("write volume file", &path)?;
            }
        }
        let mut containers = Vec::new();
        for c in &pod.containers {
            let mut config = c.config.clone();
            config.pod = Some(rec.id.clone());
            for m in &c.mounts {
                let (kind, source) = match &m.source {
                    Source::Claim(name) => ("volume", name.clone()),
                    Source::Dir(v) => {
                        let mut p = base.join(v);
                        if let Some(sub) = &m.sub_path {
                            p = p.join(sub);
                            if !p.exists() {
                                // Kubernetes makes a missing subPath as a directory.
                                std::fs::create_dir_all(&p).ctx("create subPath", &p)?;
                            }
                        }
                        ("bind", p.to_string_lossy().into_owned())
                    }
                    Source::Host(h) => {
                        let mut p = std::path::PathBuf::from(h);
                        if let Some(sub) = &m.sub_path {
                            p = p.join(sub);
                        }
                        ("bind", p.to_string_lossy().into_owned())
                    }
                };
                config.mounts.push(MountSpec {
                    kind: kind.into(),
                    source,
                    destination: m.destination.clone(),
                    readonly: m.readonly,
                    // Kubernetes does not copy the image's files into a claim.
                    nocopy: kind == "volume",
                });
            }
            let ctr = self
                .create(CreateOptions {
                    name: Some(c.name.clone()),
                    entrypoint: c.entrypoint.clone(),
                    cmd: c.cmd.clone(),
                    config,
                })
                .map_err(|e| match e.kind() {
                    crate::ErrorKind::BadParameter => {
                        Error::BadParameter(format!("{}: {e}", c.path))
                    }
                    _ => e,
                })?;
            containers.push(PlayedContainer {
                id: ctr.id,
                name: ctr.name,
            });
        }
        Ok(PlayedPod {
            id: rec.id,
            name: rec.name,
            containers,
        })
    }

    /// Undo a failed play (best effort: every step is tried).
    fn unmake(&self, made: &Made) {
        for id in made.pods.iter().rev() {
            let _ = self.pod_remove(id, true);
        }
        for v in &made.volumes {
            let _ = self.volume_remove(v);
        }
        for d in made.host_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// Remove what a play of `yaml` made: the pods of its Pods and Deployments (found by
    /// play's labels, whatever the replica count was) with their containers and files; with
    /// `opts.volumes`, the named volumes play created for its claims. ConfigMaps and Secrets
    /// have nothing of their own to remove (their files live in the pods' directories).
    pub fn kube_down(&self, yaml: &str, opts: &KubeDownOptions) -> Result<DownReport> {
        let docs = parse::raw(yaml)?;
        let mut report = DownReport::default();
        let mut claims = Vec::new();
        for d in &docs {
            let kind = d.place.kind.as_str();
            if kind == "PersistentVolumeClaim" {
                claims.push(d.place.name.clone());
                continue;
            }
            if kind != "Pod" && kind != "Deployment" {
                continue;
            }
            let spec = if kind == "Pod" {
                d.value.get("spec")
            } else {
                d.value
                    .get("spec")
                    .and_then(|s| s.get("template"))
                    .and_then(|t| t.get("spec"))
            };
            if let Some(vols) = spec
                .and_then(|s| s.get("volumes"))
                .and_then(|v| v.as_sequence())
            {
                for v in vols {
                    if let Some(c) = v
                        .get("persistentVolumeClaim")
                        .and_then(|c| c.get("claimName"))
                        .and_then(|c| c.as_str())
                    {
                        claims.push(c.to_string());
                    }
                }
            }
            let filters = PodFilters {
                labels: vec![
                    format!("{LABEL_KIND}={kind}"),
                    format!("{LABEL_NAME}={}", d.place.name),
                    format!("{LABEL_NAMESPACE}={}", d.namespace),
                ],
                ..Default::default()
            };
            for p in self.pod_list(&filters)? {
                self.pod_remove(&p.record.id, true)?;
                report.pods.push(p.record.name);
            }
        }
        if opts.volumes {
            claims.sort();
            claims.dedup();
            for c in claims {
                let ours = self
                    .db
                    .volume(&c)
                    .is_ok_and(|v| v.labels.get(LABEL_CLAIM) == Some(&c));
                if ours {
                    self.volume_remove(&c)?;
                    report.volumes.push(c);
                }
            }
        }
        Ok(report)
    }
}

/// Check `yaml` as play would before pulling anything; the warnings play would give.
pub fn validate(yaml: &str) -> Result<Vec<String>> {
    Ok(plan::plan(&parse::documents(yaml)?)?.warnings)
}
