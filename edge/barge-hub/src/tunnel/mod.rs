//! Exec, logs and connect (ServiceBus) streams to an edge, through its session: the API calls
//! [`Tunnels::open`]; if this hub holds the node's session the request goes on it, otherwise
//! it is forwarded to the hub that does (from `conns/<node>` and `hubs/<id>` in etcd).
//!
//! The registry also knows every session this hub holds (node -> [`SessionHandle`]): a new
//! session of a node replaces (and closes) an older one on this hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use barge_edge_proto::keys::{self, ConnRecord, HubRecord};
use barge_edge_proto::object::Kind;
use barge_edge_proto::wire::{b64, ConnectTarget, HubMsg};
use tokio::sync::{mpsc, Notify};

mod forward;
mod io;

pub use io::TunnelIo;

/// What to open on the edge.
#[derive(Debug, Clone)]
pub enum TunnelRequest {
    Exec {
        namespace: String,
        pod: String,
        container: String,
        cmd: Vec<String>,
        stdin: bool,
        tty: bool,
    },
    Logs {
        namespace: String,
        pod: String,
        container: String,
        follow: bool,
        tail: Option<u64>,
        timestamps: bool,
    },
    /// A raw TCP connection from the edge to `target` (the ServiceBus): bytes written on
    /// `input` reach the target, its bytes come back as fd 1 `Data`.
    Connect { target: ConnectTarget },
}

/// From the edge.
#[derive(Debug, Clone)]
pub enum TunnelOutput {
    /// fd 1 or 2.
    Data { fd: u8, data: Vec<u8> },
    /// The end: exit code, or why it failed.
    End {
        exit_code: Option<i32>,
        error: Option<String>,
    },
}

/// An open stream. Dropping `input` closes stdin; dropping the whole stream cancels it on
/// the edge.
pub struct TunnelStream {
    /// stdin (an empty Vec closes stdin).
    pub input: mpsc::Sender<Vec<u8>>,
    pub output: mpsc::Receiver<TunnelOutput>,
}

/// One live edge session on this hub.
pub struct SessionHandle {
    /// Frames to the edge.
    pub tx: mpsc::Sender<HubMsg>,
    /// Notified when the session must end (replaced by a newer one of the same node).
    pub close: Notify,
    streams: Mutex<HashMap<u32, mpsc::Sender<TunnelOutput>>>,
    next: AtomicU32,
}

impl SessionHandle {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u32, mpsc::Sender<TunnelOutput>>> {
        match self.streams.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Output the edge sent on `stream` (`Data`). Returns false when nobody listens any more.
    pub async fn deliver(&self, stream: u32, out: TunnelOutput) -> bool {
        let end = matches!(out, TunnelOutput::End { .. });
        let tx = if end {
            self.streams().remove(&stream)
        } else {
            self.streams().get(&stream).cloned()
        };
        match tx {
            Some(tx) => tx.send(out).await.is_ok(),
            None => false,
        }
    }

    /// End every open stream (the session is gone).
    pub fn fail_all(&self, why: &str) {
        let all: Vec<_> = self.streams().drain().collect();
        for (_, tx) in all {
            let _ = tx.try_send(TunnelOutput::End {
                exit_code: None,
                error: Some(why.to_string()),
            });
        }
    }
}

/// The tunnel registry.
pub struct Tunnels {
    sessions: Mutex<HashMap<String, Arc<SessionHandle>>>,
    etcd: etcd_client::Client,
    prefix: String,
    hub_id: String,
}

impl Tunnels {
    pub fn new(etcd: etcd_client::Client, prefix: String, hub_id: String) -> Tunnels {
        Tunnels {
            sessions: Mutex::new(HashMap::new()),
            etcd,
            prefix,
            hub_id,
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SessionHandle>>> {
        match self.sessions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Register `node`'s new session; an older one on this hub is told to close.
    pub fn register(&self, node: &str, tx: mpsc::Sender<HubMsg>) -> Arc<SessionHandle> {
        let handle = Arc::new(SessionHandle {
            tx,
            close: Notify::new(),
            streams: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
        });
        if let Some(old) = self.sessions().insert(node.to_string(), handle.clone()) {
            old.close.notify_one();
        }
        handle
    }

    /// Remove `node`'s session if it is still `handle`; true when it was.
    pub fn unregister(&self, node: &str, handle: &Arc<SessionHandle>) -> bool {
        let mut s = self.sessions();
        if s.get(node).is_some_and(|h| Arc::ptr_eq(h, handle)) {
            s.remove(node);
            true
        } else {
            false
        }
    }

    /// The node's session on this hub, if any.
    pub fn local(&self, node: &str) -> Option<Arc<SessionHandle>> {
        self.sessions().get(node).cloned()
    }

    /// Nodes with a session on this hub.
    pub fn local_nodes(&self) -> Vec<String> {
        self.sessions().keys().cloned().collect()
    }

    /// Open a stream to `node`. NotFound when the node is unknown; Unavailable when it has
    /// no session on any hub. Without a caller token, a session on another hub cannot be
    /// reached: see [`Tunnels::open_as`].
    pub async fn open(&self, node: &str, req: TunnelRequest) -> crate::Result<TunnelStream> {
        self.open_as(node, req, None).await
    }

    /// [`Tunnels::open`], forwarding to the hub that holds the node's session (through its
    /// fleet API, `hubs/<id>`'s api_url) with `bearer`, the caller's admin token.
    pub async fn open_as(
        &self,
        node: &str,
        req: TunnelRequest,
        bearer: Option<&str>,
    ) -> crate::Result<TunnelStream> {
        if let Some(session) = self.local(node) {
            return open_local(session, req).await;
        }
        let node_key = keys::object(&self.prefix, Kind::Node, "", node);
        if crate::store::get_json::<serde_json::Value>(&self.etcd, &node_key)
            .await?
            .is_none()
        {
            return Err(crate::Error::NotFound(format!("node {node} not found")));
        }
        let conn = keys::conn(&self.prefix, node);
        match crate::store::get_json::<ConnRecord>(&self.etcd, &conn).await? {
            Some((c, _)) if c.hub != self.hub_id => {
                let Some(bearer) = bearer else {
                    return Err(crate::Error::Unavailable(format!(
                        "node {node} is connected to hub {}, and forwarding needs the caller's token",
                        c.hub
                    )));
                };
                let hub_key = keys::hub(&self.prefix, &c.hub);
                let Some((rec, _)) =
                    crate::store::get_json::<HubRecord>(&self.etcd, &hub_key).await?
                else {
                    return Err(crate::Error::Unavailable(format!(
                        "node {node} is connected to hub {}, which is gone",
                        c.hub
                    )));
                };
                let roots = if rec.api_url.starts_with("https://") {
                    let ca_key = format!("{}pki/ca", self.prefix);
                    crate::store::get_json::<barge_edge_proto::keys::CaRecord>(&self.etcd, &ca_key)
                        .await?
                        .map(|(r, _)| r.cas.into_iter().map(|c| c.cert_pem).collect::<Vec<_>>())
                } else {
                    None
                };
                forward::open(&rec.api_url, roots.as_deref(), bearer, node, req).await
            }
            _ => Err(crate::Error::Unavailable(format!(
                "node {node} is not connected to any hub"
            ))),
        }
    }
}

/// Open a stream on a session this hub holds.
async fn open_local(
    session: Arc<SessionHandle>,
    req: TunnelRequest,
) -> crate::Result<TunnelStream> {
    let id = session.next.fetch_add(1, Ordering::Relaxed);
    let (out_tx, out_rx) = mpsc::channel(64);
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(16);
    session.streams().insert(id, out_tx.clone());
    let msg = match req {
        TunnelRequest::Exec {
            namespace,
            pod,
            container,
            cmd,
            stdin,
            tty,
        } => HubMsg::Exec {
            stream: id,
            namespace,
            pod,
            container,
            cmd,
            stdin,
            tty,
        },
        TunnelRequest::Logs {
            namespace,
            pod,
            container,
            follow,
            tail,
            timestamps,
        } => HubMsg::Logs {
            stream: id,
            namespace,
            pod,
            container,
            follow,
            tail,
            timestamps,
        },
        TunnelRequest::Connect { target } => HubMsg::Connect { stream: id, target },
    };
    if session.tx.send(msg).await.is_err() {
        session.streams().remove(&id);
        return Err(crate::Error::Unavailable(
            "the node's session closed".into(),
        ));
    }
    // Pump stdin to the edge; when the caller drops the output side, cancel on the edge.
    tokio::spawn(async move {
        let mut stdin_open = true;
        loop {
            tokio::select! {
                data = in_rx.recv(), if stdin_open => {
                    let data = match data {
                        Some(d) => d,
                        None => { stdin_open = false; Vec::new() }
                    };
                    if data.is_empty() {
                        stdin_open = false;
                    }
                    let msg = HubMsg::Data { stream: id, fd: 0, data: b64(&data) };
                    if session.tx.send(msg).await.is_err() {
                        break;
                    }
                }
                _ = out_tx.closed() => {
                    if session.streams().remove(&id).is_some() {
                        let _ = session.tx.send(HubMsg::Cancel { stream: id }).await;
                    }
                    break;
                }
            }
        }
    });
    Ok(TunnelStream {
        input: in_tx,
        output: out_rx,
    })
}
