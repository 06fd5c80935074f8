//! Pod statuses from an edge: coalesced per pod (latest wins) and written in batched etcd
//! transactions under `status/pods/<node>/...` (a node can only ever write its own).

use std::collections::BTreeMap;

use barge_edge_proto::keys;
use barge_edge_proto::object::{ObjKey, PodStatus};
use etcd_client::{Txn, TxnOp};

use crate::hub::Hub;

/// Operations per transaction (etcd's default limit is 128).
const OPS_PER_TXN: usize = 100;

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

    /// Write everything pending.
    pub async fn flush(&mut self, hub: &Hub, node: &str) -> crate::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut ops = Vec::with_capacity(pending.len());
        for (k, st) in &pending {
            let key = keys::pod_status(&hub.prefix, node, &k.namespace, &k.name);
            ops.push(match st {
                Some(st) => TxnOp::put(key, crate::store::to_json(st)?, None),
                None => TxnOp::delete(key, None),
            });
        }
        let mut c = hub.etcd.clone();
        while !ops.is_empty() {
            let rest = ops.split_off(ops.len().min(OPS_PER_TXN));
            let chunk = std::mem::replace(&mut ops, rest);
            if let Err(e) = c.txn(Txn::new().and_then(chunk)).await {
                // Keep them for the next flush (latest still wins).
                for (k, v) in pending {
                    self.pending.entry(k).or_insert(v);
                }
                return Err(crate::store::unavailable("status/pods", e));
            }
        }
        Ok(())
    }
}
