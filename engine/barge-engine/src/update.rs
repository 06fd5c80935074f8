//! `update`: change a container's resource limits (docker's `update` / `POST
//! /containers/{id}/update`): live in its cgroup when it runs, and in its stored config and
//! runtime spec so that restarts keep them.

use crate::config::ContainerConfig;
use crate::error::{Error, IoContext, Result};
use crate::events::Action;
use crate::Engine;

/// What to change; `None` keeps the current value (docker's zero values).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRequest {
    /// Memory limit in bytes (at least 6 MB, docker's minimum).
    pub memory: Option<i64>,
    /// CPUs (docker's `--cpus` / `NanoCpus` ÷ 10⁹).
    pub cpus: Option<f64>,
    /// Most processes; -1 or 0 for no limit.
    pub pids_limit: Option<i64>,
}

impl UpdateRequest {
    fn apply(&self, c: &mut ContainerConfig) {
        if let Some(m) = self.memory {
            c.memory = Some(m);
        }
        if let Some(n) = self.cpus {
            c.cpus = Some(n);
        }
        if let Some(p) = self.pids_limit {
            c.pids_limit = (p > 0).then_some(p);
        }
    }
}

impl Engine {
    /// Apply `u` to container `key`: checked like a create's values first, then to the
    /// running container's cgroup (a limit the kernel refuses, such as memory below what the
    /// container uses, changes nothing), then to its config and spec.
    pub fn update(&self, key: &str, u: &UpdateRequest) -> Result<crate::db::ContainerRecord> {
        let rec = self.db.find(key)?;
        let _lock = crate::lock::ContainerLock::acquire(&self.paths.lock(&rec.id))?;
        let mut rec = self.db.find(&rec.id)?;
        let mut c = rec.config.clone();
        u.apply(&mut c);
        crate::validate::limits(&mut c)?;
        let mut limits = crate::spec::limits(&c);
        if u.pids_limit.is_some() && c.pids_limit.is_none() {
            // No limit any more: the cgroup's "max".
            limits["pids"] = serde_json::json!({"limit": -1});
        }
        if self.status(&rec).state.is_active() {
            let resources: oci_spec::runtime::LinuxResources =
                serde_json::from_value(limits.clone())
                    .map_err(Error::encode(format!("resources of container {}", rec.id)))?;
            barge_runtime::update::update(&self.runtime()?, &rec.id, &resources)?;
        }
        self.write_spec_limits(&rec.id, &limits)?;
        self.db.update_config(&rec.id, &c)?;
        rec.config = c;
        self.emit_container(&rec, Action::Update, &[]);
        Ok(rec)
    }

    /// Merge `limits` into `linux.resources` of the container's runtime spec (atomically).
    fn write_spec_limits(&self, id: &str, limits: &serde_json::Value) -> Result<()> {
        let path = self.paths.container(id).join("config.json");
        let text = std::fs::read(&path).ctx("read runtime spec", &path)?;
        let mut spec: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Record(format!("runtime spec {}: {e}", path.display())))?;
        let res = &mut spec["linux"]["resources"];
        if !res.is_object() {
            *res = serde_json::json!({});
        }
        if let Some(obj) = limits.as_object() {
            for (k, v) in obj {
                res[k] = v.clone();
            }
        }
        let data = serde_json::to_vec_pretty(&spec)
            .map_err(Error::encode(format!("runtime spec of container {id}")))?;
        barge_util::fs::write_atomic(&path, &data, 0o600, barge_util::fs::Durability::Durable)
            .ctx("write runtime spec", &path)
    }
}
