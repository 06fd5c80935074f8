//! Edged: the node's desired pods (from the cache) made real through the engine, and their
//! status back. [`Workloads`] is what the edge hub drives; [`EngineWorkloads`] is the real
//! one (the engine's `kube_play` / `kube_down`, status from the engine's event journal), a
//! hollow one plugs in for `edge sim`.
//!
//! Every pod the agent makes carries `io.barge.edge.owner=agent` and `io.barge.edge.hash`
//! (see [`crate::render`]): a pod whose hash did not change is never restarted; one whose
//! hash changed is replaced; one no longer desired is removed; one whose sandbox is down
//! (after a reboot) is started again. The engine is synchronous: every method here blocks
//! and the hub calls them on blocking threads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use barge_edge_proto::object::{
    ContainerStatus, Kind, ObjKey, Object, PodPhase, PodStatus as WirePodStatus,
};
use barge_edge_proto::wire::PodReport;
use barge_engine::events::{Filters, Next, SubscribeOptions, Type};
use barge_engine::kube::{KubeDownOptions, KubePlayOptions, LABEL_NAMESPACE};
use barge_engine::pod::{PodFilters, PodListed, PodStatus, SandboxState};
use barge_engine::status::State;
use barge_engine::Engine;

use crate::log::log;
use crate::render::{self, Rendered, LABEL_HASH, LABEL_OWNER, OWNER_AGENT};
use crate::tunnel::{ExecRequest, LogsRequest, StreamIo};

/// What the edge hub needs from the node's runtime. Every method may block.
pub trait Workloads: Send + Sync + 'static {
    /// Make the node run exactly the Pods of `objects` (the whole cache: Pods, ConfigMaps,
    /// Secrets). Returns whether some pod could not be made (worth a retry later).
    fn reconcile(&self, objects: &[Object]) -> bool;
    /// The status of every desired pod now, and the keys of pods removed since the last
    /// call (`gone`).
    fn statuses(&self) -> (Vec<PodReport>, Vec<ObjKey>);
    /// Block, calling `changed` whenever a pod's status may have changed (never returns
    /// unless the source of changes ends).
    fn watch(&self, changed: Box<dyn Fn() + Send>);
    /// (pods, containers running) for the heartbeat.
    fn counts(&self) -> (u32, u32);
    /// Run a command in a pod's container for a tunnel stream (blocks until it ends; sends
    /// its output and the stream's end on `io`).
    fn exec(&self, req: &ExecRequest, io: &StreamIo);
    /// Send a container's log on a tunnel stream (blocks until it is sent, or with `follow`
    /// until the container ends or the stream is cancelled).
    fn logs(&self, req: &LogsRequest, io: &StreamIo);
    /// The IP of the agent's pod `namespace/pod`, for a ServiceBus connect to it.
    fn pod_ip(&self, namespace: &str, pod: &str) -> Result<std::net::IpAddr, String> {
        Err(format!(
            "pod {namespace}/{pod}: this node's workloads have no pod IPs"
        ))
    }
}

/// One desired pod as edged last handled it.
#[derive(Debug, Clone)]
struct Desired {
    key: ObjKey,
    revision: i64,
    /// Container name in the spec -> image.
    images: BTreeMap<String, String>,
    /// Why it is not running, when making it failed.
    error: Option<String>,
}

/// The real workloads: pods through the engine.
pub struct EngineWorkloads {
    pub engine: Arc<Engine>,
    desired: Mutex<BTreeMap<String, Desired>>,
    gone: Mutex<BTreeSet<ObjKey>>,
}

fn owner_filter() -> PodFilters {
    PodFilters {
        labels: vec![format!("{LABEL_OWNER}={OWNER_AGENT}")],
        ..Default::default()
    }
}

fn images_of(pod: &Object) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for list in ["initContainers", "containers"] {
        for c in pod
            .spec
            .get(list)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
        {
            if let (Some(n), Some(i)) = (
                c.get("name").and_then(|v| v.as_str()),
                c.get("image").and_then(|v| v.as_str()),
            ) {
                out.insert(n.to_string(), i.to_string());
            }
        }
    }
    out
}

impl EngineWorkloads {
    pub fn new(engine: Arc<Engine>) -> EngineWorkloads {
        EngineWorkloads {
            engine,
            desired: Mutex::new(BTreeMap::new()),
            gone: Mutex::new(BTreeSet::new()),
        }
    }

    /// The engine's container id of `container` (empty: the first) in the agent's pod
    /// `namespace/pod`.
    fn container_of(&self, namespace: &str, pod: &str, container: &str) -> Result<String, String> {
        let engine_name = render::engine_name(&ObjKey {
            kind: Kind::Pod,
            namespace: namespace.to_string(),
            name: pod.to_string(),
        });
        let mut f = owner_filter();
        f.name = Some(engine_name.clone());
        let listed = self.engine.pod_list(&f).map_err(|e| e.to_string())?;
        let p = listed
            .iter()
            .find(|p| {
                p.record.name == engine_name
                    && p.record
                        .config
                        .labels
                        .get(LABEL_NAMESPACE)
                        .map(String::as_str)
                        == Some(namespace)
            })
            .ok_or_else(|| format!("pod {namespace}/{pod} is not running on this node"))?;
        let c = if container.is_empty() {
            p.containers.iter().find(|c| !c.init)
        } else {
            let full = format!("{engine_name}-{container}");
            p.containers.iter().find(|c| c.name == full)
        };
        c.map(|c| c.id.clone())
            .ok_or_else(|| format!("pod {namespace}/{pod} has no container {container:?}"))
    }

    fn exec_inner(&self, req: &ExecRequest, io: &StreamIo) -> Result<Option<i32>, String> {
        use std::io::{Read, Write};
        if req.cmd.is_empty() {
            return Err("exec: no command".into());
        }
        let id = self.container_of(&req.namespace, &req.pod, &req.container)?;
        let exec_id = self
            .engine
            .exec_create(
                &id,
                &barge_engine::exec::ExecOptions {
                    cmd: req.cmd.clone(),
                    tty: req.tty,
                    interactive: req.stdin,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
        let mut sock = self
            .engine
            .exec_start_attached(
                &exec_id,
                barge_engine::container::Streams {
                    stdin: req.stdin,
                    stdout: true,
                    stderr: true,
                },
            )
            .map_err(|e| e.to_string())?;
        if let Ok(s) = sock.try_clone() {
            io.cancel.on_cancel(Box::new(move || {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }));
        }
        if req.stdin {
            if let (Ok(mut w), Some(rx)) = (sock.try_clone(), io.take_stdin()) {
                // stdin: the hub's chunks until an empty one (or the stream's end).
                std::thread::spawn(move || {
                    while let Ok(chunk) = rx.recv() {
                        if chunk.is_empty() || w.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let _ = w.shutdown(std::net::Shutdown::Write);
                });
            }
        }
        use barge_engine::frames::{parse_header, EXIT, STDERR, STDOUT};
        loop {
            let mut h = [0u8; 8];
            if sock.read_exact(&mut h).is_err() {
                break;
            }
            let (stream, len) = parse_header(&h);
            let mut buf = vec![0u8; len];
            if sock.read_exact(&mut buf).is_err() {
                break;
            }
            match stream {
                STDOUT | STDERR if !io.data(stream, &buf) => return Ok(None),
                EXIT => return Ok(String::from_utf8_lossy(&buf).trim().parse().ok()),
                _ => {}
            }
        }
        if io.cancel.is_set() {
            return Err("cancelled".into());
        }
        Ok(self
            .engine
            .exec_inspect(&exec_id)
            .ok()
            .and_then(|i| i.exit_code))
    }

    fn play(&self, r: &Rendered) -> Result<(), String> {
        if !r.missing.is_empty() {
            let names: Vec<String> = r.missing.iter().map(|k| k.to_string()).collect();
            return Err(format!("waiting for {}", names.join(", ")));
        }
        self.engine
            .kube_play(&r.yaml, &KubePlayOptions::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn remove(&self, p: &PodListed) -> Result<(), String> {
        let ns = p
            .record
            .config
            .labels
            .get(LABEL_NAMESPACE)
            .cloned()
            .unwrap_or_else(|| "default".into());
        let yaml = render::down_yaml(&p.record.name, &ns);
        match self.engine.kube_down(&yaml, &KubeDownOptions::default()) {
            Ok(rep) if !rep.pods.is_empty() => Ok(()),
            // Not found by play's labels: remove it by id.
            _ => self
                .engine
                .pod_remove(&p.record.id, true)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Handle one desired pod against what exists. A pod with the right hash but not all
    /// its containers (the agent was killed in the middle of a play) is made again.
    fn one(&self, r: &Rendered, existing: Option<&PodListed>, want: usize) -> Result<(), String> {
        match existing {
            Some(p)
                if p.record.config.labels.get(LABEL_HASH) == Some(&r.hash)
                    && p.containers.len() == want =>
            {
                if p.record.sandbox != SandboxState::Ready {
                    log(format!("starting pod {} (sandbox down)", p.record.name));
                    self.engine
                        .pod_start(&p.record.id)
                        .map(drop)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Some(p) => {
                log(format!(
                    "replacing pod {} (its content changed)",
                    r.key.name
                ));
                self.remove(p)?;
                self.play(r)
            }
            None => {
                log(format!("making pod {}", r.key.name));
                self.play(r)
            }
        }
    }

    fn report(&self, d: &Desired, listed: Option<&PodListed>) -> WirePodStatus {
        let now = barge_util::time::now_rfc3339();
        let mut st = WirePodStatus {
            phase: PodPhase::Pending,
            observed_revision: d.revision,
            container_statuses: Vec::new(),
            pod_id: None,
            pod_ip: None,
            start_time: None,
            message: d.error.clone(),
            observed_at: now,
        };
        let Some(p) = listed else {
            return st;
        };
        st.pod_id = Some(p.record.id.clone());
        st.start_time = Some(p.record.created_rfc3339());
        let prefix = format!("{}-", p.record.name);
        let main: Vec<_> = p.containers.iter().filter(|c| !c.init).collect();
        st.phase = match p.status {
            PodStatus::Running | PodStatus::Degraded | PodStatus::Paused => PodPhase::Running,
            PodStatus::Created | PodStatus::Stopped => PodPhase::Pending,
            PodStatus::Exited => {
                if !main.is_empty() && main.iter().all(|c| c.exit_code == Some(0)) {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                }
            }
        };
        for c in &p.containers {
            let name = c.name.strip_prefix(&prefix).unwrap_or(&c.name).to_string();
            let state = match c.state {
                State::Running | State::Paused | State::Restarting => "running",
                State::Created => "waiting",
                State::Exited | State::Dead => "terminated",
            };
            let (restart_count, started_at) = match self.engine.db.find(&c.id) {
                Ok(rec) => {
                    let s = self.engine.status(&rec);
                    (s.restart_count, s.started_at)
                }
                Err(_) => (0, None),
            };
            st.container_statuses.push(ContainerStatus {
                image: d.images.get(&name).cloned().unwrap_or_default(),
                name,
                container_id: c.id.clone(),
                state: state.into(),
                ready: state == "running",
                restart_count,
                exit_code: if state == "terminated" {
                    c.exit_code
                } else {
                    None
                },
                started_at,
                message: None,
            });
        }
        if st.phase == PodPhase::Running {
            if let Ok(i) = self.engine.pod_inspect(&p.record.id) {
                st.pod_ip = i
                    .ips
                    .first()
                    .map(|ip| ip.split('/').next().unwrap_or(ip).to_string());
            }
        }
        st
    }
}

impl Workloads for EngineWorkloads {
    fn reconcile(&self, objects: &[Object]) -> bool {
        let data: BTreeMap<ObjKey, &Object> = objects
            .iter()
            .filter(|o| matches!(o.kind, Kind::ConfigMap | Kind::Secret))
            .map(|o| (o.key(), o))
            .collect();
        let existing: BTreeMap<String, PodListed> = match self.engine.pod_list(&owner_filter()) {
            Ok(v) => v.into_iter().map(|p| (p.record.name.clone(), p)).collect(),
            Err(e) => {
                log(format!("list pods: {e}"));
                return true;
            }
        };
        let mut failed = false;
        let mut now = BTreeMap::new();
        for pod in objects.iter().filter(|o| o.kind == Kind::Pod) {
            let mut d = Desired {
                key: pod.key(),
                revision: pod.revision(),
                images: images_of(pod),
                error: None,
            };
            let res = render::render(pod, &data)
                .map_err(|e| format!("{e:#}"))
                .and_then(|r| {
                    let want = d.images.len();
                    self.one(&r, existing.get(&render::engine_name(&r.key)), want)
                });
            if let Err(e) = res {
                log(format!("pod {}: {e}", d.key));
                d.error = Some(e);
                failed = true;
            }
            now.insert(render::engine_name(&d.key), d);
        }
        for (name, p) in &existing {
            if !now.contains_key(name) {
                log(format!("removing pod {name} (no longer desired)"));
                if let Err(e) = self.remove(p) {
                    log(format!("remove pod {name}: {e}"));
                    failed = true;
                }
            }
        }
        let mut desired = self.desired.lock().unwrap_or_else(|e| e.into_inner());
        let mut gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        for (name, d) in desired.iter() {
            if !now.contains_key(name) {
                gone.insert(d.key.clone());
            }
        }
        for d in now.values() {
            gone.remove(&d.key);
        }
        *desired = now;
        failed
    }

    fn statuses(&self) -> (Vec<PodReport>, Vec<ObjKey>) {
        let desired = self
            .desired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let gone: Vec<ObjKey> =
            std::mem::take(&mut *self.gone.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        let listed: BTreeMap<String, PodListed> = self
            .engine
            .pod_list(&owner_filter())
            .map(|v| v.into_iter().map(|p| (p.record.name.clone(), p)).collect())
            .unwrap_or_default();
        let pods = desired
            .iter()
            .map(|(name, d)| PodReport {
                key: d.key.clone(),
                status: self.report(d, listed.get(name)),
            })
            .collect();
        (pods, gone)
    }

    fn watch(&self, changed: Box<dyn Fn() + Send>) {
        let opts = SubscribeOptions {
            since: None,
            until: None,
            filters: Filters {
                types: vec![Type::Container, Type::Pod],
                ..Default::default()
            },
        };
        loop {
            let mut sub = match self.engine.subscribe(&opts) {
                Ok(s) => s,
                Err(e) => {
                    log(format!("follow the engine's events: {e}"));
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            };
            loop {
                match sub.next_timeout(Duration::from_secs(3600)) {
                    Ok(Next::Event(_)) => changed(),
                    Ok(Next::Timeout) => {}
                    Ok(Next::End) => break,
                    Err(e) => {
                        log(format!("engine events: {e}"));
                        std::thread::sleep(Duration::from_secs(1));
                        break;
                    }
                }
            }
        }
    }

    fn exec(&self, req: &ExecRequest, io: &StreamIo) {
        match self.exec_inner(req, io) {
            Ok(code) => io.end(code, None),
            Err(e) => io.end(None, Some(e)),
        }
    }

    fn logs(&self, req: &LogsRequest, io: &StreamIo) {
        let id = match self.container_of(&req.namespace, &req.pod, &req.container) {
            Ok(id) => id,
            Err(e) => return io.end(None, Some(e)),
        };
        let opts = barge_engine::logs::LogOptions {
            follow: req.follow,
            tail: req.tail.map(|t| t as usize),
            timestamps: req.timestamps,
            ..Default::default()
        };
        // Read on this (blocking) thread, checking the stream's cancel flag at every poll of
        // a followed log: a Cancel frees the thread even while the container says nothing.
        let (mut out, mut err) = (TunnelWriter { io, fd: 1 }, TunnelWriter { io, fd: 2 });
        let cancelled = || io.cancel.is_set();
        let r = self
            .engine
            .logs_to_until(&id, &opts, (&mut out, &mut err), &cancelled);
        if io.cancel.is_set() {
            return io.end(None, Some("cancelled".into()));
        }
        match r {
            Ok(()) => io.end(Some(0), None),
            Err(e) => io.end(None, Some(e.to_string())),
        }
    }

    fn pod_ip(&self, namespace: &str, pod: &str) -> Result<std::net::IpAddr, String> {
        let engine_name = render::engine_name(&ObjKey {
            kind: Kind::Pod,
            namespace: namespace.to_string(),
            name: pod.to_string(),
        });
        let mut f = owner_filter();
        f.name = Some(engine_name.clone());
        let listed = self.engine.pod_list(&f).map_err(|e| e.to_string())?;
        let p = listed
            .iter()
            .find(|p| {
                p.record.name == engine_name
                    && p.record
                        .config
                        .labels
                        .get(LABEL_NAMESPACE)
                        .map(String::as_str)
                        == Some(namespace)
            })
            .ok_or_else(|| format!("pod {namespace}/{pod} is not running on this node"))?;
        let i = self
            .engine
            .pod_inspect(&p.record.id)
            .map_err(|e| format!("pod {namespace}/{pod}: {e}"))?;
        let ip = i
            .ips
            .first()
            .ok_or_else(|| format!("pod {namespace}/{pod} has no IP address (is it running?)"))?;
        let ip = ip.split('/').next().unwrap_or(ip);
        ip.parse()
            .map_err(|_| format!("pod {namespace}/{pod}: bad IP address {ip:?}"))
    }

    fn counts(&self) -> (u32, u32) {
        match self.engine.pod_list(&owner_filter()) {
            Ok(v) => {
                let running = v
                    .iter()
                    .flat_map(|p| &p.containers)
                    .filter(|c| c.state == State::Running)
                    .count();
                (v.len() as u32, running as u32)
            }
            Err(_) => (0, 0),
        }
    }
}

/// A tunnel stream's output as a writer (a closed stream is a broken pipe).
struct TunnelWriter<'a> {
    io: &'a StreamIo,
    fd: u8,
}

impl std::io::Write for TunnelWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.io.data(self.fd, buf) {
            Ok(buf.len())
        } else {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
