//! Tunnels: the hub's Exec and Logs streams on the session. Each stream runs on a blocking
//! thread (the engine is synchronous) and sends `Data` frames, then one `StreamEnd`; `Data`
//! from the hub on fd 0 is the exec's stdin (empty: close it); `Cancel` stops the stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use barge_edge_proto::wire::{self, EdgeMsg, HubMsg};
use tokio::sync::mpsc;

use crate::edged::Workloads;

/// What the hub asked to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    /// Empty: the pod's first container.
    pub container: String,
    pub cmd: Vec<String>,
    pub stdin: bool,
    pub tty: bool,
}

/// Which log the hub asked for.
#[derive(Debug, Clone)]
pub struct LogsRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub follow: bool,
    pub tail: Option<u64>,
    pub timestamps: bool,
}

/// A stream's cancellation: a flag, and a hook that unblocks the stream's I/O.
#[derive(Default)]
pub struct Cancel {
    flag: AtomicBool,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Cancel {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Run `f` on cancel (at once if already cancelled).
    pub fn on_cancel(&self, f: Box<dyn FnOnce() + Send>) {
        if self.is_set() {
            f();
            return;
        }
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = hook {
            f();
        }
    }
}

/// The edge side of one stream, as the workloads see it.
pub struct StreamIo {
    pub stream: u32,
    out: mpsc::Sender<EdgeMsg>,
    /// stdin chunks (an empty one: close stdin), for whoever takes them.
    stdin: Mutex<Option<std::sync::mpsc::Receiver<Vec<u8>>>>,
    pub cancel: Arc<Cancel>,
}

impl StreamIo {
    /// Send output on `fd` (1 stdout, 2 stderr); false when the session is gone.
    pub fn data(&self, fd: u8, bytes: &[u8]) -> bool {
        bytes.chunks(32 * 1024).all(|c| {
            self.out
                .blocking_send(EdgeMsg::Data {
                    stream: self.stream,
                    fd,
                    data: wire::b64(c),
                })
                .is_ok()
        })
    }

    /// The stdin chunks from the hub (once).
    pub fn take_stdin(&self) -> Option<std::sync::mpsc::Receiver<Vec<u8>>> {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// End the stream.
    pub fn end(&self, exit_code: Option<i32>, error: Option<String>) {
        let _ = self.out.blocking_send(EdgeMsg::StreamEnd {
            stream: self.stream,
            exit_code,
            error,
        });
    }
}

struct Open {
    stdin: std::sync::mpsc::Sender<Vec<u8>>,
    cancel: Arc<Cancel>,
}

/// The open streams of one session (cancelled when the session ends).
pub struct Tunnels {
    work: Arc<dyn Workloads>,
    out: mpsc::Sender<EdgeMsg>,
    open: Arc<Mutex<BTreeMap<u32, Open>>>,
}

impl Tunnels {
    pub fn new(work: Arc<dyn Workloads>, out: mpsc::Sender<EdgeMsg>) -> Tunnels {
        Tunnels {
            work,
            out,
            open: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    fn start(&self, stream: u32, run: impl FnOnce(Arc<dyn Workloads>, StreamIo) + Send + 'static) {
        let (tx, rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(Cancel::default());
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(
            stream,
            Open {
                stdin: tx,
                cancel: cancel.clone(),
            },
        );
        let io = StreamIo {
            stream,
            out: self.out.clone(),
            stdin: Mutex::new(Some(rx)),
            cancel,
        };
        let work = self.work.clone();
        let open = self.open.clone();
        tokio::task::spawn_blocking(move || {
            run(work, io);
            open.lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&stream);
        });
    }

    /// Handle an Exec, Logs, Data or Cancel frame.
    pub fn handle(&mut self, m: HubMsg) {
        match m {
            HubMsg::Exec {
                stream,
                namespace,
                pod,
                container,
                cmd,
                stdin,
                tty,
            } => {
                let req = ExecRequest {
                    namespace,
                    pod,
                    container,
                    cmd,
                    stdin,
                    tty,
                };
                self.start(stream, move |w, io| w.exec(&req, &io));
            }
            HubMsg::Logs {
                stream,
                namespace,
                pod,
                container,
                follow,
                tail,
                timestamps,
            } => {
                let req = LogsRequest {
                    namespace,
                    pod,
                    container,
                    follow,
                    tail,
                    timestamps,
                };
                self.start(stream, move |w, io| w.logs(&req, &io));
            }
            HubMsg::Data {
                stream,
                fd: 0,
                data,
            } => {
                let bytes = wire::unb64(&data).unwrap_or_default();
                if let Some(o) = self
                    .open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&stream)
                {
                    let _ = o.stdin.send(bytes);
                }
            }
            HubMsg::Cancel { stream } => {
                let o = self
                    .open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&stream);
                if let Some(o) = o {
                    o.cancel.cancel();
                }
            }
            _ => {}
        }
    }
}

impl Drop for Tunnels {
    /// The session ended: every stream stops.
    fn drop(&mut self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for o in open.into_values() {
            o.cancel.cancel();
        }
    }
}
