//! Containers: CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! ListContainers, ContainerStatus, UpdateContainerResources, ReopenContainerLog.

use std::collections::HashMap;

use barge_engine::config::{ContainerConfig, MountSpec};
use barge_engine::create::CreateOptions;
use barge_engine::db::ContainerRecord;
use barge_engine::status::State;
use barge_engine::Engine;
use tonic::Status;

use crate::labels;
use crate::proto::*;
use crate::status::{engine, is_not_found, CriResult};

/// Whether the engine's container is one the CRI made.
pub fn is_cri(rec: &ContainerRecord) -> bool {
    rec.config.labels.contains_key(labels::SANDBOX)
}

/// The CRI container `id` (id, prefix or name): NotFound for another kind of container.
pub fn find(e: &Engine, id: &str) -> CriResult<ContainerRecord> {
    if id.is_empty() {
        return Err(Status::invalid_argument("the container id is empty"));
    }
    let rec = engine(e.db.find(id))?;
    if !is_cri(&rec) {
        return Err(Status::not_found(format!(
            "container {id}: not a CRI container"
        )));
    }
    Ok(rec)
}

/// CreateContainer in the sandbox `pod_id`.
pub fn create(
    e: &Engine,
    pod_id: &str,
    c: &crate::proto::ContainerConfig,
    sandbox: Option<&PodSandboxConfig>,
) -> CriResult<String> {
    let Some(md) = c.metadata.as_ref().filter(|m| !m.name.is_empty()) else {
        return Err(Status::invalid_argument(
            "CreateContainer: the container config has no metadata name",
        ));
    };
    if pod_id.is_empty() {
        return Err(Status::invalid_argument(
            "CreateContainer: no pod_sandbox_id",
        ));
    }
    let pod = match e.pod_find(pod_id) {
        Ok(p) => p,
        Err(err) if is_not_found(&err) => {
            return Err(Status::not_found(format!(
                "CreateContainer {}: sandbox {pod_id} not found",
                md.name
            )))
        }
        Err(err) => return Err(crate::status::from_engine(err)),
    };
    let image = c
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument(format!(
            "CreateContainer {}: no image",
            md.name
        )));
    }
    // The image must be stored (kubelet pulls first): NotFound otherwise.
    let image_rec = e.images.resolve(&image).map_err(|err| match err {
        barge_image::Error::NotFound { .. } => Status::not_found(format!(
            "CreateContainer {}: image {image:?} is not present (pull it first)",
            md.name
        )),
        other => crate::status::image_error(other),
    })?;
    let log_path = if c.log_path.is_empty() {
        None
    } else {
        Some(crate::logpath::resolve(
            pod.config.log_directory.as_deref(),
            &c.log_path,
        )?)
    };
    let mut cfg = ContainerConfig {
        image: image_rec.name.clone(),
        env: c
            .envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect(),
        working_dir: c.working_dir.clone(),
        tty: c.tty,
        open_stdin: c.stdin,
        pod: Some(pod.id.clone()),
        annotations: c.annotations.clone().into_iter().collect(),
        log_path,
        // kubelet restarts containers itself.
        restart: Default::default(),
        ..Default::default()
    };
    cfg.labels = c.labels.clone().into_iter().collect();
    cfg.labels.insert(labels::NAME.into(), md.name.clone());
    cfg.labels
        .insert(labels::ATTEMPT.into(), md.attempt.to_string());
    cfg.labels.insert(labels::SANDBOX.into(), pod.id.clone());
    cfg.labels.insert(labels::IMAGE.into(), image.clone());
    if c.stdin_once {
        cfg.labels.insert(labels::STDIN_ONCE.into(), "true".into());
    }
    for m in &c.mounts {
        if m.container_path.is_empty() || !m.container_path.starts_with('/') {
            return Err(Status::invalid_argument(format!(
                "CreateContainer {}: mount container_path {:?} must be absolute",
                md.name, m.container_path
            )));
        }
        if !m.host_path.starts_with('/') {
            return Err(Status::invalid_argument(format!(
                "CreateContainer {}: mount host_path {:?} must be absolute",
                md.name, m.host_path
            )));
        }
        cfg.mounts.push(MountSpec {
            kind: "bind".into(),
            source: m.host_path.clone(),
            destination: m.container_path.clone(),
            readonly: m.readonly,
            nocopy: true,
        });
    }
    if let Some(linux) = &c.linux {
        if let Some(r) = &linux.resources {
            let (memory, cpus) = crate::security::limits(r);
            cfg.memory = memory;
            cfg.cpus = cpus;
        }
        let target = |id: &str| -> CriResult<String> {
            let rec = find(e, id)?;
            let st = e.status(&rec);
            if st.pid <= 0 {
                return Err(Status::failed_precondition(format!(
                    "namespace target container {id} is not running"
                )));
            }
            Ok(format!("/proc/{}/ns/pid", st.pid))
        };
        let sc = linux.security_context.clone().unwrap_or_default();
        crate::security::apply(
            &mut cfg,
            &sc,
            &crate::security::Context {
                sandbox_privileged: pod.config.privileged,
                target_pid_ns: &target,
            },
        )?;
    } else {
        // No security context at all: containerd's defaults (no seccomp profile given is
        // unconfined).
        cfg.seccomp = Some("unconfined".into());
    }
    let _ = sandbox;
    let name = labels::engine_name(&[
        "k8s",
        &md.name,
        &pod.config.metadata.name,
        &pod.config.metadata.namespace,
        &pod.config.metadata.uid,
        &md.attempt.to_string(),
    ]);
    let opts = CreateOptions {
        name,
        entrypoint: (!c.command.is_empty()).then(|| c.command.clone()),
        cmd: c.args.clone(),
        config: cfg,
    };
    let rec = engine(e.create(opts))?;
    Ok(rec.id)
}

/// RemoveContainer: force-remove (stopping it); one already gone is fine.
pub fn remove(e: &Engine, id: &str) -> CriResult<()> {
    let rec = match find(e, id) {
        Ok(r) => r,
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(()),
        Err(s) => return Err(s),
    };
    match e.remove(&rec.id, true, false) {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(crate::status::from_engine(err)),
    }
}

fn cri_state(s: State) -> ContainerState {
    match s {
        State::Created => ContainerState::ContainerCreated,
        State::Running | State::Paused | State::Restarting => ContainerState::ContainerRunning,
        State::Exited => ContainerState::ContainerExited,
        State::Dead => ContainerState::ContainerUnknown,
    }
}

fn metadata(rec: &ContainerRecord) -> ContainerMetadata {
    let l = &rec.config.labels;
    ContainerMetadata {
        name: l.get(labels::NAME).cloned().unwrap_or_default(),
        attempt: l
            .get(labels::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
    }
}

fn image_spec(rec: &ContainerRecord) -> ImageSpec {
    ImageSpec {
        image: rec
            .config
            .labels
            .get(labels::IMAGE)
            .cloned()
            .unwrap_or_else(|| rec.config.image.clone()),
        ..Default::default()
    }
}

fn annotations(rec: &ContainerRecord) -> HashMap<String, String> {
    rec.config
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The CRI status of a container.
pub fn status_of(e: &Engine, rec: &ContainerRecord) -> crate::proto::ContainerStatus {
    let st = e.status(rec);
    let state = cri_state(st.state);
    let exit_code = st.exit_code.unwrap_or(0);
    let (reason, message) = match state {
        ContainerState::ContainerExited if st.oom_killed => ("OOMKilled", String::new()),
        ContainerState::ContainerExited if exit_code == 0 => ("Completed", String::new()),
        ContainerState::ContainerExited => ("Error", st.error.clone().unwrap_or_default()),
        _ => ("", String::new()),
    };
    crate::proto::ContainerStatus {
        id: rec.id.clone(),
        metadata: Some(metadata(rec)),
        state: state as i32,
        created_at: rec.created,
        started_at: crate::time::rfc3339_nanos(st.started_at.as_deref()),
        finished_at: if state == ContainerState::ContainerExited {
            crate::time::rfc3339_nanos(st.finished_at.as_deref())
        } else {
            0
        },
        exit_code,
        image: Some(image_spec(rec)),
        image_ref: rec.config.image_id.clone(),
        image_id: rec.config.image_id.clone(),
        reason: reason.into(),
        message,
        labels: labels::public(&rec.config.labels),
        annotations: annotations(rec),
        mounts: rec
            .config
            .mounts
            .iter()
            .map(|m| Mount {
                container_path: m.destination.clone(),
                host_path: m.source.clone(),
                readonly: m.readonly,
                ..Default::default()
            })
            .collect(),
        log_path: rec
            .config
            .log_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        resources: Some(ContainerResources {
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: rec.config.memory.unwrap_or(0),
                cpu_period: if rec.config.cpus.is_some() {
                    100_000
                } else {
                    0
                },
                cpu_quota: rec
                    .config
                    .cpus
                    .map(|c| (c * 100_000.0).round() as i64)
                    .unwrap_or(0),
                ..Default::default()
            }),
            windows: None,
        }),
        user: None,
    }
}

/// ContainerStatus (with `info` when verbose: docker's inspect document).
pub fn status(e: &Engine, id: &str, verbose: bool) -> CriResult<ContainerStatusResponse> {
    let rec = find(e, id)?;
    let mut info = HashMap::new();
    if verbose {
        let st = e.status(&rec);
        let doc = barge_engine::docker::container::inspect(e, &rec, &st);
        info.insert("info".to_string(), doc.to_string());
    }
    Ok(ContainerStatusResponse {
        status: Some(status_of(e, &rec)),
        info,
    })
}

/// The CRI containers, with their status.
pub fn all(e: &Engine) -> CriResult<Vec<(ContainerRecord, barge_engine::status::Status)>> {
    Ok(engine(e.list(true))?
        .into_iter()
        .filter(|(r, _)| is_cri(r))
        .collect())
}

/// ListContainers with CRI's filter.
pub fn list(e: &Engine, f: Option<&ContainerFilter>) -> CriResult<Vec<Container>> {
    let mut out = Vec::new();
    for (rec, st) in all(e)? {
        let sandbox = rec
            .config
            .labels
            .get(labels::SANDBOX)
            .cloned()
            .unwrap_or_default();
        if let Some(f) = f {
            if !f.id.is_empty() && !rec.id.starts_with(&f.id) {
                continue;
            }
            if !f.pod_sandbox_id.is_empty() && !sandbox.starts_with(&f.pod_sandbox_id) {
                continue;
            }
            if f.state
                .as_ref()
                .is_some_and(|s| s.state != cri_state(st.state) as i32)
            {
                continue;
            }
            if !labels::select(&f.label_selector, &rec.config.labels) {
                continue;
            }
        }
        out.push(Container {
            id: rec.id.clone(),
            pod_sandbox_id: sandbox,
            metadata: Some(metadata(&rec)),
            image: Some(image_spec(&rec)),
            image_ref: rec.config.image_id.clone(),
            state: cri_state(st.state) as i32,
            created_at: rec.created,
            labels: labels::public(&rec.config.labels),
            annotations: annotations(&rec),
            image_id: rec.config.image_id.clone(),
        });
    }
    Ok(out)
}

/// UpdateContainerResources: memory and CPU limits, live.
pub fn update(e: &Engine, id: &str, r: Option<&LinuxContainerResources>) -> CriResult<()> {
    let rec = find(e, id)?;
    let Some(r) = r else { return Ok(()) };
    let (memory, cpus) = crate::security::limits(r);
    let req = barge_engine::update::UpdateRequest {
        memory,
        cpus,
        pids_limit: None,
    };
    engine(e.update(&rec.id, &req)).map(drop)
}

/// A container's CRI metadata and annotations (for stats attributes).
pub fn status_of_meta(rec: &ContainerRecord) -> (ContainerMetadata, HashMap<String, String>) {
    (metadata(rec), annotations(rec))
}
