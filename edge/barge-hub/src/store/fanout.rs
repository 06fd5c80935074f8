//! Fanout: which sessions a cache change concerns. Each session follows its node
//! ([`Fanout::follow`]); a change wakes only the nodes whose view it may touch, found from
//! the change itself (before and after): a Node wakes itself, a Pod or Device its
//! `spec.nodeName`, a Deployment or its placement the nodes it is placed on, a DaemonSet the
//! nodes whose labels its template's nodeSelector matches, a ConfigMap or Secret the nodes
//! of the workloads that reference it, a DeviceModel the nodes of the Devices using it, a
//! revocation its node. A change of one node's objects therefore costs one session's work,
//! not one per connected edge, and a DaemonSet change fans out without recomputing the
//! views of the nodes it does not match.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use barge_edge_proto::object::{Kind, ObjKey, Object};
use serde_json::Value;
use tokio::sync::watch;

use super::cache::Snapshot;
use crate::view::{of_kind_in, selector_matches, template_spec, workload_refs};

/// One key the cache saw change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Object(ObjKey),
    /// `placements/<ns>/<deployment>`.
    Placement(String, String),
    /// `revoked/<node>`.
    Revoked(String),
}

type Followers = HashMap<String, Vec<(u64, watch::Sender<u64>)>>;

/// The sessions following their node, by node name.
#[derive(Default)]
pub struct Fanout {
    followers: Mutex<Followers>,
    next_id: AtomicU64,
}

/// A session's subscription to its node's changes; unsubscribes when dropped.
pub struct Follow {
    fanout: Arc<Fanout>,
    node: String,
    id: u64,
    rx: watch::Receiver<u64>,
}

impl Follow {
    /// Wait for the next change that concerns the node (cancel safe: a wake-up that comes
    /// while nobody waits is kept for the next call).
    pub async fn changed(&mut self) {
        // The sender lives in the fanout as long as this Follow does.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let mut f = self.fanout.lock();
        if let Some(list) = f.get_mut(&self.node) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                f.remove(&self.node);
            }
        }
    }
}

/// What a batch of changes concerns.
#[derive(Debug, Default)]
struct Targets {
    nodes: BTreeSet<String>,
    /// Pod specs (DaemonSet templates) whose nodeSelector picks the nodes concerned.
    selectors: Vec<Value>,
}

impl Fanout {
    fn lock(&self) -> MutexGuard<'_, Followers> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follow `node`'s changes.
    pub fn follow(self: &Arc<Self>, node: &str) -> Follow {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(0);
        self.lock()
            .entry(node.to_string())
            .or_default()
            .push((id, tx));
        Follow {
            fanout: self.clone(),
            node: node.to_string(),
            id,
            rx,
        }
    }

    /// How many sessions follow a node.
    pub fn followers(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Wake every session (after a reload: anything may have changed).
    pub fn notify_all(&self) {
        for list in self.lock().values() {
            for (_, tx) in list {
                tx.send_modify(|n| *n += 1);
            }
        }
    }

    /// Wake the sessions that `changed` (from `old` to `new`) concerns; returns how many.
    pub fn notify(&self, old: &Snapshot, new: &Snapshot, changed: &[Changed]) -> usize {
        let t = targets(old, new, changed);
        let f = self.lock();
        let mut woken = 0;
        let mut wake = |list: &Vec<(u64, watch::Sender<u64>)>| {
            for (_, tx) in list {
                tx.send_modify(|n| *n += 1);
                woken += 1;
            }
        };
        for n in &t.nodes {
            if let Some(list) = f.get(n) {
                wake(list);
            }
        }
        if !t.selectors.is_empty() {
            for (name, list) in f.iter() {
                if t.nodes.contains(name) {
                    continue;
                }
                let Some(node) = new.objects.get(&node_key(name)) else {
                    continue;
                };
                if t.selectors
                    .iter()
                    .any(|s| selector_matches(s, &node.metadata.labels))
                {
                    wake(list);
                }
            }
        }
        woken
    }
}

fn node_key(name: &str) -> ObjKey {
    ObjKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: name.to_string(),
    }
}

fn node_name(o: &Object) -> Option<&str> {
    o.spec.get("nodeName").and_then(Value::as_str)
}

/// The nodes and selectors a batch of changes concerns (looking at both snapshots: what
/// an object was and what it is now both matter).
fn targets(old: &Snapshot, new: &Snapshot, changed: &[Changed]) -> Targets {
    let mut t = Targets::default();
    for ch in changed {
        for snap in [old, new] {
            match ch {
                Changed::Revoked(n) => {
                    t.nodes.insert(n.clone());
                }
                Changed::Placement(ns, name) => placed_on(snap, ns, name, &mut t),
                Changed::Object(k) => {
                    let obj = snap.objects.get(k);
                    match k.kind {
                        Kind::Node => {
                            t.nodes.insert(k.name.clone());
                        }
                        Kind::Pod | Kind::Device => {
                            if let Some(n) = obj.and_then(|o| node_name(o)) {
                                t.nodes.insert(n.to_string());
                            }
                        }
                        Kind::Deployment => placed_on(snap, &k.namespace, &k.name, &mut t),
                        Kind::DaemonSet => {
                            if let Some(o) = obj {
                                t.selectors.push(template_spec(o).clone());
                            }
                        }
                        Kind::ConfigMap | Kind::Secret => users_of_data(snap, k, &mut t),
                        Kind::DeviceModel => {
                            for (_, d) in of_kind_in(&snap.objects, Kind::Device, &k.namespace) {
                                if crate::view::device_model_ref(d).as_ref() == Some(k) {
                                    if let Some(n) = node_name(d) {
                                        t.nodes.insert(n.to_string());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    t
}

/// The nodes a Deployment is placed on.
fn placed_on(snap: &Snapshot, ns: &str, name: &str, t: &mut Targets) {
    if let Some(p) = snap.placements.get(&(ns.to_string(), name.to_string())) {
        t.nodes.extend(p.nodes.keys().cloned());
    }
}

/// The nodes (or selectors) of the workloads that reference ConfigMap/Secret `k`.
fn users_of_data(snap: &Snapshot, k: &ObjKey, t: &mut Targets) {
    for kind in [Kind::Pod, Kind::Deployment, Kind::DaemonSet] {
        for (wk, w) in of_kind_in(&snap.objects, kind, &k.namespace) {
            if !workload_refs(w).contains(k) {
                continue;
            }
            match kind {
                Kind::Pod => {
                    if let Some(n) = node_name(w) {
                        t.nodes.insert(n.to_string());
                    }
                }
                Kind::Deployment => placed_on(snap, &wk.namespace, &wk.name, t),
                _ => t.selectors.push(template_spec(w).clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barge_edge_proto::keys::Placement;
    use serde_json::json;

    fn put(snap: &mut Snapshot, v: Value) -> ObjKey {
        let o: Object = serde_json::from_value(v).unwrap();
        let k = o.key();
        snap.objects.insert(k.clone(), Arc::new(o));
        k
    }

    fn node(snap: &mut Snapshot, name: &str, labels: Value) {
        put(
            snap,
            json!({"apiVersion":"v1","kind":"Node","metadata":{"name":name,"labels":labels}}),
        );
    }

    /// How many times each follower was woken.
    fn woken(f: &mut [(&str, Follow)]) -> Vec<(String, bool)> {
        f.iter_mut()
            .map(|(n, fl)| {
                let w = fl.rx.has_changed().unwrap();
                fl.rx.mark_unchanged();
                (n.to_string(), w)
            })
            .collect()
    }

    fn only(names: &[&str], all: &[&str]) -> Vec<(String, bool)> {
        all.iter()
            .map(|n| (n.to_string(), names.contains(n)))
            .collect()
    }

    #[test]
    fn a_change_wakes_only_the_nodes_it_concerns() {
        let fan = Arc::new(Fanout::default());
        let all = ["a", "b", "c"];
        let mut base = Snapshot::default();
        node(&mut base, "a", json!({"zone":"x"}));
        node(&mut base, "b", json!({"zone":"y"}));
        node(&mut base, "c", json!({"zone":"x"}));
        let mut f: Vec<(&str, Follow)> = all.iter().map(|n| (*n, fan.follow(n))).collect();

        // A pod bound to b: b only.
        let mut s1 = base.clone();
        let pod = put(
            &mut s1,
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
            "spec":{"nodeName":"b","containers":[{"name":"c","image":"i",
            "envFrom":[{"configMapRef":{"name":"cm"}}]}]}}),
        );
        assert_eq!(fan.notify(&base, &s1, &[Changed::Object(pod.clone())]), 1);
        assert_eq!(woken(&mut f), only(&["b"], &all));

        // The pod moved from b to c: both.
        let mut s2 = s1.clone();
        put(
            &mut s2,
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
            "spec":{"nodeName":"c","containers":[{"name":"c","image":"i",
            "envFrom":[{"configMapRef":{"name":"cm"}}]}]}}),
        );
        fan.notify(&s1, &s2, &[Changed::Object(pod)]);
        assert_eq!(woken(&mut f), only(&["b", "c"], &all));

        // The ConfigMap the pod references: its node (c) only.
        let mut s3 = s2.clone();
        let cm = put(
            &mut s3,
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}),
        );
        fan.notify(&s2, &s3, &[Changed::Object(cm)]);
        assert_eq!(woken(&mut f), only(&["c"], &all));

        // A DaemonSet selecting zone=x: a and c, not b.
        let mut s4 = s3.clone();
        let ds = put(
            &mut s4,
            json!({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d","namespace":"default"},
            "spec":{"template":{"spec":{"nodeSelector":{"zone":"x"},"containers":[{"name":"c","image":"i"}]}}}}),
        );
        assert_eq!(fan.notify(&s3, &s4, &[Changed::Object(ds)]), 2);
        assert_eq!(woken(&mut f), only(&["a", "c"], &all));

        // A placement change: the nodes before and after.
        let mut s5 = s4.clone();
        s4.placements.insert(
            ("default".into(), "web".into()),
            Placement {
                nodes: [("a".to_string(), 1)].into(),
            },
        );
        s5.placements.insert(
            ("default".into(), "web".into()),
            Placement {
                nodes: [("b".to_string(), 1)].into(),
            },
        );
        fan.notify(
            &s4,
            &s5,
            &[Changed::Placement("default".into(), "web".into())],
        );
        assert_eq!(woken(&mut f), only(&["a", "b"], &all));

        // A Node's own change and a revocation: that node.
        fan.notify(&s5, &s5, &[Changed::Object(node_key("a"))]);
        assert_eq!(woken(&mut f), only(&["a"], &all));
        fan.notify(&s5, &s5, &[Changed::Revoked("c".into())]);
        assert_eq!(woken(&mut f), only(&["c"], &all));

        // A dropped Follow no longer counts.
        assert_eq!(fan.followers(), 3);
        f.pop();
        assert_eq!(fan.followers(), 2);
        fan.notify_all();
        assert_eq!(woken(&mut f), only(&["a", "b"], &all[..2]));
    }
}
