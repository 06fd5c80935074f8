//! Device twin reports from an edge ([`EdgeMsg::Twin`](barge_edge_proto::wire::EdgeMsg)):
//! each [`TwinReport`] is merged into etcd in one transaction, then the session answers
//! `TwinAck`.
//!
//! - The device must be this node's (`spec.nodeName`); a report for any other device is
//!   logged and skipped, never stored (the ack still covers it, so the edge drops it).
//! - Reported values are checked against the model (`check_value`) and kept in
//!   `status/devices/<ns>/<name>` when their version is higher than the stored one.
//! - Desired values edited on the edge are checked (`check_desired`) and settled with
//!   [`resolve_desired`] against the Device object's current desired value: an accepted or
//!   winning edit rewrites the object's desired value (origin edge), which the ordinary
//!   Sync then carries back down; a conflict (edge or cloud won) is appended to the record.
//! - The state is stored, and `online` refreshes the last-online time.
//!
//! Values that fail the model check are dropped with a warning. Merging is idempotent: a
//! resent report finds nothing to change and writes nothing.

use barge_edge_proto::device::{resolve_desired, DeviceSpec, Resolution};
use barge_edge_proto::keys::{self, DeviceTwinRecord};
use barge_edge_proto::object::{Kind, Object};
use barge_edge_proto::wire::TwinReport;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::devices as dv;
use crate::hub::Hub;
use crate::util::now_secs;

/// Attempts of one report's transaction that lost a race.
const TRIES: usize = 8;

/// Merge every report of one `Twin` message sent by `node`. Only an unreachable etcd (or
/// endless races) fails it: the edge then resends after reconnecting.
pub async fn merge(hub: &Hub, node: &str, reports: &[TwinReport]) -> crate::Result<()> {
    for r in reports {
        merge_one(hub, node, r).await?;
    }
    Ok(())
}

fn encode(obj: &Object) -> crate::Result<Vec<u8>> {
    let mut o = obj.clone();
    o.metadata.resource_version = None;
    o.status = serde_json::Value::Null;
    crate::store::to_json(&o)
}

async fn merge_one(hub: &Hub, node: &str, r: &TwinReport) -> crate::Result<()> {
    let k = &r.key;
    if k.kind != Kind::Device {
        tracing::warn!("node {node}: twin report for {k}, which is not a Device; skipped");
        return Ok(());
    }
    let okey = keys::object(&hub.prefix, Kind::Device, &k.namespace, &k.name);
    let skey = keys::device_status(&hub.prefix, &k.namespace, &k.name);
    for _ in 0..TRIES {
        let obj = match crate::store::get_json::<Object>(&hub.etcd, &okey).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::warn!("node {node}: twin report for {k}, which does not exist; skipped");
                return Ok(());
            }
            Err(e @ crate::Error::Unavailable(_)) => return Err(e),
            Err(e) => {
                tracing::warn!("node {node}: twin report for {k}: {e}; skipped");
                return Ok(());
            }
        };
        let (mut obj, obj_rev) = obj;
        let spec: DeviceSpec = match serde_json::from_value(obj.spec.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("node {node}: twin report for {k}: stored spec: {e}; skipped");
                return Ok(());
            }
        };
        if spec.node_name.as_deref() != Some(node) {
            tracing::warn!(
                "node {node}: twin report for {k}, a device of node {}: not its own; skipped",
                spec.node_name.as_deref().unwrap_or("<none>")
            );
            return Ok(());
        }
        let model_name = spec
            .device_model_ref
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let mkey = keys::object(&hub.prefix, Kind::DeviceModel, &k.namespace, &model_name);
        let model = match crate::store::get_json::<Object>(&hub.etcd, &mkey).await {
            Ok(Some((m, _))) => dv::check_model(&m.spec).ok(),
            Ok(None) => None,
            Err(e @ crate::Error::Unavailable(_)) => return Err(e),
            Err(_) => None,
        };
        let Some(model) = model else {
            tracing::warn!(
                "node {node}: twin report for {k}: its DeviceModel {model_name} is missing or malformed; skipped"
            );
            return Ok(());
        };
        let (old_rec, rec_rev) =
            match crate::store::get_json::<DeviceTwinRecord>(&hub.etcd, &skey).await {
                Ok(Some((rec, rev))) => (rec, rev),
                Ok(None) => (DeviceTwinRecord::default(), 0),
                Err(e @ crate::Error::Unavailable(_)) => return Err(e),
                Err(e) => {
                    // A malformed record is replaced by what the edge reports now.
                    tracing::warn!("node {node}: {skey}: {e}; starting a new record");
                    (DeviceTwinRecord::default(), -1)
                }
            };
        let mut rec = old_rec.clone();
        let mut obj_changed = false;
        for p in &r.properties {
            let Some(mp) = model.property(&p.name) else {
                tracing::warn!(
                    "node {node}: twin report for {k}: no property {:?} in DeviceModel {model_name}; dropped",
                    p.name
                );
                continue;
            };
            if let Some(rep) = &p.reported {
                match mp.check_value(&rep.value) {
                    Ok(()) => {
                        dv::merge_reported(&mut rec, &p.name, rep);
                    }
                    Err(e) => tracing::warn!(
                        "node {node}: {k} property {}: reported value dropped: {e}",
                        p.name
                    ),
                }
            }
            if let Some(edit) = &p.desired {
                if let Err(e) = mp.check_desired(&edit.value) {
                    tracing::warn!(
                        "node {node}: {k} property {}: desired value set on the edge dropped: {e}",
                        p.name
                    );
                    continue;
                }
                // The object's current spec (an earlier entry of this report may have changed it).
                let current = serde_json::from_value::<DeviceSpec>(obj.spec.clone())
                    .ok()
                    .and_then(|s| dv::desired_of(&s).remove(&p.name));
                match resolve_desired(current.as_ref(), edit) {
                    Resolution::Accept(v) => {
                        dv::set_desired(&mut obj.spec, &p.name, &v);
                        obj_changed = true;
                    }
                    Resolution::Same => {}
                    Resolution::EdgeWins { desired, lost } => {
                        dv::set_desired(&mut obj.spec, &p.name, &desired);
                        obj_changed = true;
                        dv::add_conflict(&mut rec, &p.name, &desired, &lost);
                        tracing::info!(
                            "node {node}: {k} property {}: edited on both sides; the edge's {:?} (version {}) wins over the cloud's {:?} (version {})",
                            p.name, desired.value, desired.version, lost.value, lost.version
                        );
                    }
                    Resolution::CloudWins { lost } => {
                        if let Some(kept) = &current {
                            dv::add_conflict(&mut rec, &p.name, kept, &lost);
                            tracing::info!(
                                "node {node}: {k} property {}: edited on both sides; the cloud's {:?} (version {}) stays over the edge's {:?} (version {})",
                                p.name, kept.value, kept.version, lost.value, lost.version
                            );
                        }
                    }
                }
            }
        }
        if let Some(state) = &r.state {
            dv::set_state(&mut rec, state, now_secs());
        }
        let rec_changed = rec != old_rec || rec_rev < 0;
        if !obj_changed && !rec_changed {
            return Ok(());
        }
        let mut when = vec![Compare::mod_revision(
            okey.as_str(),
            CompareOp::Equal,
            obj_rev,
        )];
        let mut ops = Vec::new();
        if obj_changed {
            ops.push(TxnOp::put(okey.as_str(), encode(&obj)?, None));
        }
        if rec_changed {
            when.push(match rec_rev {
                0 => Compare::create_revision(skey.as_str(), CompareOp::Equal, 0),
                r if r > 0 => Compare::mod_revision(skey.as_str(), CompareOp::Equal, r),
                _ => Compare::mod_revision(skey.as_str(), CompareOp::Greater, 0),
            });
            ops.push(TxnOp::put(
                skey.as_str(),
                crate::store::to_json(&rec)?,
                None,
            ));
        }
        let mut c = hub.etcd.clone();
        let resp = c
            .txn(Txn::new().when(when).and_then(ops))
            .await
            .map_err(|e| crate::store::unavailable(&skey, e))?;
        if resp.succeeded() {
            return Ok(());
        }
    }
    Err(crate::Error::Unavailable(format!(
        "twin report for {k}: {okey} changed concurrently {TRIES} times"
    )))
}
