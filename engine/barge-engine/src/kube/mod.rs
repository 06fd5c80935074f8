//! `kube play`, `kube down`, `kube generate`: Kubernetes YAML (`Pod`, `Deployment`,
//! `ConfigMap`, `Secret`, `PersistentVolumeClaim`) run as barge pods on one node, with
//! podman's habits. Every front end (the CLI, the edge agent) calls [`Engine::kube_play`],
//! [`Engine::kube_down`] and [`Engine::kube_generate`].
//!
//! - `objects`: the Kubernetes shapes (serde).
//! - `parse`: a multi-document YAML stream into typed documents, kinds checked.
//! - `check`: the policy on fields barge does not act on (refused or ignored with a warning).
//! - `quantity`: `500m` CPUs, `64Mi` bytes.
//! - `data`: ConfigMap and Secret contents, and what env and volumes take from them.
//! - `plan`: a Pod or Deployment template into pod and container configurations, all
//!   validated before anything is made.
//! - `play`: making what the plan says (pull, volumes, pods, files, containers, start),
//!   undone on failure; and `down`.
//! - `generate`: a pod back into a Pod YAML that `kube play` accepts.
//!
//! Choices (documented in the README): Deployment replicas are pods `<deployment>-pod-<n>`;
//! a container is `<pod>-<container>`; ConfigMap and Secret volumes are directories of files
//! in the pod's directory (removed with the pod), mounted read-only; emptyDir is a directory
//! there too (shared by the pod's containers); a PersistentVolumeClaim is the named volume of
//! its name, created if missing and kept by `down` unless asked (podman's `--force`).

pub mod check;
pub mod data;
pub mod generate;
pub mod objects;
pub mod parse;
pub mod plan;
pub mod play;
pub mod quantity;

use serde::Serialize;

/// Label on pods made by `kube play`: `Pod` or `Deployment`.
pub const LABEL_KIND: &str = "io.barge.kube.kind";
/// Label on pods made by `kube play`: the name of the Pod or Deployment.
pub const LABEL_NAME: &str = "io.barge.kube.name";
/// Label on pods made by `kube play`: the object's namespace (`default` when not given).
pub const LABEL_NAMESPACE: &str = "io.barge.kube.namespace";
/// Label on containers made by `kube play`: the container's name in the YAML.
pub const LABEL_CONTAINER: &str = "io.barge.kube.container";
/// Label on named volumes `kube play` created for a PersistentVolumeClaim: the claim.
pub const LABEL_CLAIM: &str = "io.barge.kube.claim";

/// How to play.
#[derive(Debug, Clone, Default)]
pub struct KubePlayOptions {
    /// Remove what an earlier play of the same YAML made first (`--replace`).
    pub replace: bool,
    /// Create without starting (`--start=false`).
    pub no_start: bool,
}

/// How to tear down.
#[derive(Debug, Clone, Default)]
pub struct KubeDownOptions {
    /// Also remove the named volumes play created for the YAML's claims (podman's `--force`).
    pub volumes: bool,
}

/// A container `kube play` made.
#[derive(Debug, Clone, Serialize)]
pub struct PlayedContainer {
    pub id: String,
    pub name: String,
}

/// A pod `kube play` made.
#[derive(Debug, Clone, Serialize)]
pub struct PlayedPod {
    pub id: String,
    pub name: String,
    pub containers: Vec<PlayedContainer>,
}

/// What `kube play` made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlayReport {
    pub pods: Vec<PlayedPod>,
    /// Named volumes used for claims (created or already there).
    pub volumes: Vec<String>,
    /// Fields that were ignored (they do not change what runs), one line each.
    pub warnings: Vec<String>,
}

/// What `kube down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// Pods removed (names), with their containers.
    pub pods: Vec<String>,
    /// Volumes removed.
    pub volumes: Vec<String>,
}
