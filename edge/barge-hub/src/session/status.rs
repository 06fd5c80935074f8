//! Pod statuses from an edge: coalesced per pod (latest wins) and written in batched etcd
//! writes under `status/pods/<node>/...` (a node can only ever write its own).

use std::collections::BTreeMap;

use barge_edge_proto::keys;
use barge_edge_proto::object::{ObjKey, PodStatus};

use crate::hub::Hub;
use crate::store::batch::Write;

/// Pending writes: Some = put, None = delete.
#[derive(Default)]
pub struct StatusBuffer {
    pending: BTreeMap<ObjKey, Option<PodStatus>>,
}

impl StatusBuffer {
    pub fn put(&mut self, key: ObjKey, status: PodStatus) {
        self.pending.insert(key, Some(status));
    }

    pub fn gone(&mut self, key: ObjKey) {
        self.pending.insert(key, None);
    }

    /// Write everything pending (with other sessions' writes, [`crate::store::batch`]).
    pub async fn flush(&mut self, hub: &Hub, node: &str) -> crate::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut writes = Vec::with_capacity(pending.len());
        for (k, st) in &pending {
            let key = keys::pod_status(&hub.prefix, node, &k.namespace, &k.name);
            writes.push(match st {
                Some(st) => Write::put(key, crate::store::to_json(st)?),
                None => Write::delete(key),
            });
        }
        if let Err(e) = hub.writes.write("status/pods", writes).await {
            // Keep them for the next flush (latest still wins).
            for (k, v) in pending {
                self.pending.entry(k).or_insert(v);
            }
            return Err(e);
        }
        Ok(())
    }
}
