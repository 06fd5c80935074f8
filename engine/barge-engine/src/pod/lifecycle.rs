//! The pod API every front end calls (CLI, CRI, `kube play`).

use super::config::{PodConfig, PodRecord};
use super::status::{PodFilters, PodInspect, PodListed};
use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// Create a pod (no namespaces yet: `pod_start` or its first container's start makes the
    /// sandbox). Duplicate name: Conflict; bad config: BadParameter; nothing is left on error.
    pub fn pod_create(&self, config: PodConfig) -> Result<PodRecord> {
        let _ = config;
        Err(Error::BadParameter("pods: not implemented yet".into()))
    }

    /// Bring the sandbox up (idempotent), run the init containers in creation order (each
    /// must exit 0), then start the other containers.
    pub fn pod_start(&self, key: &str) -> Result<PodRecord> {
        Err(Error::NoSuchPod(key.into()))
    }

    /// Stop every container (`timeout` seconds before SIGKILL, None: each one's own), then
    /// tear the sandbox down (network, namespaces).
    pub fn pod_stop(&self, key: &str, timeout: Option<u32>) -> Result<PodRecord> {
        let _ = timeout;
        Err(Error::NoSuchPod(key.into()))
    }

    /// Remove a pod: with containers (or running ones) only with `force` (they are
    /// stopped and removed), else Conflict. Leaves no pin, veth, mount or cgroup.
    pub fn pod_remove(&self, key: &str, force: bool) -> Result<PodRecord> {
        let _ = force;
        Err(Error::NoSuchPod(key.into()))
    }

    /// Every pod matching `filters`, newest first, with status and containers.
    pub fn pod_list(&self, filters: &PodFilters) -> Result<Vec<PodListed>> {
        let _ = filters;
        Ok(Vec::new())
    }

    /// One pod in detail.
    pub fn pod_inspect(&self, key: &str) -> Result<PodInspect> {
        Err(Error::NoSuchPod(key.into()))
    }

    /// The pod's row by id, name or id prefix.
    pub fn pod_find(&self, key: &str) -> Result<PodRecord> {
        self.db.find_pod(key)
    }

    /// The pod's containers, in creation order.
    pub fn pod_containers(&self, pod_id: &str) -> Result<Vec<ContainerRecord>> {
        let mut v: Vec<ContainerRecord> = self
            .db
            .all()?
            .into_iter()
            .filter(|r| r.config.pod.as_deref() == Some(pod_id))
            .collect();
        v.sort_by_key(|r| r.created);
        Ok(v)
    }
}
