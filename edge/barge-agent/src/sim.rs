//! `barge edge sim --count N`: N hollow agents in one process for the scale benchmark. Each
//! is a real agent (its own key, certificate, SQLite cache, TLS session, Sync/Ack, status and
//! heartbeats) whose workloads are [`Hollow`]: a pod is "running" as soon as it is desired.
//! Agents join with the given token when their state directory has no `edge.json` (the hub
//! must accept the token for every one of them: a multi-use token), at most 64 at a time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use barge_edge_proto::object::{Kind, ObjKey, Object, PodPhase, PodStatus};
use barge_edge_proto::wire::PodReport;

use crate::config::EdgePaths;
use crate::edged::Workloads;
use crate::edgehub::RunOptions;
use crate::join::JoinRequest;
use crate::tunnel::{ExecRequest, LogsRequest, StreamIo};

/// Workloads that only pretend: every desired pod is Running at once.
#[derive(Default)]
pub struct Hollow {
    desired: Mutex<BTreeMap<ObjKey, i64>>,
    gone: Mutex<Vec<ObjKey>>,
}

impl Workloads for Hollow {
    fn reconcile(&self, objects: &[Object]) -> bool {
        let now: BTreeMap<ObjKey, i64> = objects
            .iter()
            .filter(|o| o.kind == Kind::Pod)
            .map(|o| (o.key(), o.revision()))
            .collect();
        let mut d = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        g.extend(d.keys().filter(|k| !now.contains_key(*k)).cloned());
        *d = now;
        false
    }

    fn statuses(&self) -> (Vec<PodReport>, Vec<ObjKey>) {
        let at = barge_util::time::now_rfc3339();
        let pods = self
            .desired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, rev)| PodReport {
                key: k.clone(),
                status: PodStatus {
                    phase: PodPhase::Running,
                    observed_revision: *rev,
                    container_statuses: Vec::new(),
                    pod_id: None,
                    pod_ip: None,
                    start_time: None,
                    message: None,
                    observed_at: at.clone(),
                },
            })
            .collect();
        let gone = std::mem::take(&mut *self.gone.lock().unwrap_or_else(|e| e.into_inner()));
        (pods, gone)
    }

    fn watch(&self, _changed: Box<dyn Fn() + Send>) {}

    fn counts(&self) -> (u32, u32) {
        let n = self.desired.lock().unwrap_or_else(|e| e.into_inner()).len() as u32;
        (n, n)
    }

    fn exec(&self, _req: &ExecRequest, io: &StreamIo) {
        io.end(None, Some("a hollow node runs nothing".into()));
    }

    fn logs(&self, _req: &LogsRequest, io: &StreamIo) {
        io.end(None, Some("a hollow node has no logs".into()));
    }
}

/// What `edge sim` runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub count: usize,
    pub hub: String,
    pub token: String,
    /// Node names are `<prefix><i>`.
    pub prefix: String,
    /// Each agent's state is under `<dir>/<name>/edge/`.
    pub dir: PathBuf,
    pub run: RunOptions,
}

/// Run `count` hollow agents until the process is stopped.
pub async fn run(o: SimOptions) -> Result<()> {
    crate::log::set_quiet();
    let joins = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..o.count {
        let name = format!("{}{i}", o.prefix);
        let paths = EdgePaths::new(&o.dir.join(&name));
        let (o, joins) = (o.clone(), joins.clone());
        tasks.spawn(async move {
            if paths.load().is_err() {
                let _permit = joins.acquire().await;
                let req = JoinRequest {
                    hub: o.hub.clone(),
                    token: o.token.clone(),
                    name: name.clone(),
                    labels: [("barge.io/sim".to_string(), "true".to_string())].into(),
                };
                if let Err(e) = crate::join::join(&paths, &req).await {
                    eprintln!("barge edge sim: {name}: join: {e:#}");
                    return;
                }
            }
            if let Err(e) = crate::edgehub::run(paths, Arc::new(Hollow::default()), o.run).await {
                eprintln!("barge edge sim: {name}: {e:#}");
            }
        });
    }
    eprintln!("barge edge sim: {} hollow agents started", o.count);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
