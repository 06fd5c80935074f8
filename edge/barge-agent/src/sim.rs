//! `barge edge sim --count N`: N hollow agents in one process for the scale benchmark. Each
//! is a real agent (its own key, certificate, SQLite cache, TLS session, Sync/Ack, status and
//! heartbeats) whose workloads are [`Hollow`]: a pod is "running" as soon as it is desired.
//! Agents join with the given token when their state directory has no `edge.json` (the hub
//! must accept the token for every one of them: a multi-use token), at most 64 at a time.
//!
//! Built for 10 000 agents in one process: the open-files limit is raised (as root up to
//! `/proc/sys/fs/nr_open`), each agent's cache is in memory (one file per agent: its TLS
//! socket), agents start spread over `--ramp` (each with the usual backoff and jitter
//! afterwards). With `--report FILE` every agent appends `UNIX_MS NODE NS/POD REVISION` the
//! moment it applies a pod revision it did not hold, so a benchmark measures how long a
//! change took to reach each edge (not sampled).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use barge_edge_proto::object::{Kind, ObjKey, Object, PodPhase, PodStatus};
use barge_edge_proto::wire::PodReport;

use crate::config::EdgePaths;
use crate::edged::Workloads;
use crate::edgehub::RunOptions;
use crate::join::JoinRequest;
use crate::tunnel::{ExecRequest, LogsRequest, StreamIo};

/// The `--report` file: one line per pod revision an agent applied, `UNIX_MS NODE NS/POD
/// REVISION`, shared by every agent of the process.
pub struct Report {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl Report {
    /// Create (truncate) `path`.
    pub fn create(path: &std::path::Path) -> Result<Report> {
        let f = std::fs::File::create(path)
            .with_context(|| format!("create the report file {}", path.display()))?;
        Ok(Report {
            out: Mutex::new(std::io::BufWriter::new(f)),
        })
    }

    fn note(&self, node: &str, pods: &[(&ObjKey, i64)]) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for (k, rev) in pods {
            let _ = writeln!(out, "{ms} {node} {}/{} {rev}", k.namespace, k.name);
        }
        if let Err(e) = out.flush() {
            eprintln!("barge edge sim: writing the report: {e}");
        }
    }
}

/// Workloads that only pretend: every desired pod is Running at once.
#[derive(Default)]
pub struct Hollow {
    node: String,
    report: Option<Arc<Report>>,
    desired: Mutex<BTreeMap<ObjKey, i64>>,
    gone: Mutex<Vec<ObjKey>>,
}

impl Hollow {
    /// The hollow workloads of node `node`, noting applied pods in `report`.
    pub fn new(node: &str, report: Option<Arc<Report>>) -> Hollow {
        Hollow {
            node: node.to_string(),
            report,
            ..Default::default()
        }
    }
}

impl Workloads for Hollow {
    fn reconcile(&self, objects: &[Object]) -> bool {
        let now: BTreeMap<ObjKey, i64> = objects
            .iter()
            .filter(|o| o.kind == Kind::Pod)
            .map(|o| (o.key(), o.revision()))
            .collect();
        let mut d = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &self.report {
            let new: Vec<(&ObjKey, i64)> = now
                .iter()
                .filter(|(k, rev)| d.get(*k) != Some(*rev))
                .map(|(k, rev)| (k, *rev))
                .collect();
            if !new.is_empty() {
                r.note(&self.node, &new);
            }
        }
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
    /// Agents start evenly over this time (0: all at once).
    pub ramp: Duration,
    /// Where agents note the pod revisions they apply (see [`Report`]).
    pub report: Option<PathBuf>,
}

/// Run `count` hollow agents until the process is stopped.
pub async fn run(o: SimOptions) -> Result<()> {
    crate::log::set_quiet();
    let nofile = raise_nofile();
    if nofile < o.count as u64 + 256 {
        eprintln!(
            "barge edge sim: the open-files limit is {nofile}, {} agents need about {}",
            o.count,
            o.count + 256
        );
    }
    let report = match &o.report {
        Some(p) => Some(Arc::new(Report::create(p)?)),
        None => None,
    };
    let mut run = o.run.clone();
    run.cache_in_memory = true;
    run.inline_work = true;
    let joins = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    let step = o.ramp / (o.count.max(1) as u32);
    for i in 0..o.count {
        let name = format!("{}{i}", o.prefix);
        let paths = EdgePaths::new(&o.dir.join(&name));
        let (o, joins, report, run) = (o.clone(), joins.clone(), report.clone(), run.clone());
        let delay = step * i as u32;
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
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
            let work = Arc::new(Hollow::new(&name, report));
            if let Err(e) = crate::edgehub::run(paths, work, run).await {
                eprintln!("barge edge sim: {name}: {e:#}");
            }
        });
    }
    eprintln!("barge edge sim: {} hollow agents started", o.count);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Raise RLIMIT_NOFILE as far as allowed (root: up to `/proc/sys/fs/nr_open`); the soft
/// limit in force afterwards.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard)
        .max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, ceiling, ceiling).is_ok() {
        return ceiling;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}
