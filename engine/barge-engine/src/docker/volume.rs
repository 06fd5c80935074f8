//! Volumes as docker shows them (`docker volume inspect`, `GET /volumes`).

use serde_json::{json, Value};

use crate::db::VolumeRecord;
use crate::Engine;

/// docker's volume document.
pub fn volume(engine: &Engine, v: &VolumeRecord) -> Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": engine.volume_path(&v.name),
        "CreatedAt": barge_runtime::time::format_rfc3339(v.created, 0),
        "Labels": v.labels,
        "Scope": "local",
        "Options": {},
    })
}
