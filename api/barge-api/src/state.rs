//! What every handler shares: the engine (one per daemon, over the same store the CLI uses)
//! and the daemon's settings.

use std::sync::Arc;

use barge_engine::Engine;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub info: Arc<DaemonInfo>,
    /// Attaches waiting for their container to start (docker attaches before it starts).
    pub pending: Arc<Pending>,
    /// `docker ps`'s entries, kept fresh by the event journal.
    pub lists: Arc<crate::list_cache::ListCache>,
    /// Wakes waits and event streams when the journal changes.
    pub journal: Arc<crate::journal_wake::JournalWake>,
}

/// An attach made before its container started: the start hands it the shim's socket.
pub struct PendingAttach {
    pub streams: barge_engine::container::Streams,
    pub tx: tokio::sync::oneshot::Sender<std::os::unix::net::UnixStream>,
}

/// Pending attaches by container id.
#[derive(Default)]
pub struct Pending(std::sync::Mutex<std::collections::HashMap<String, Vec<PendingAttach>>>);

impl Pending {
    pub fn add(&self, id: &str, p: PendingAttach) {
        if let Ok(mut m) = self.0.lock() {
            let v = m.entry(id.to_string()).or_default();
            // Attaches whose client went away are dropped here.
            v.retain(|p| !p.tx.is_closed());
            v.push(p);
        }
    }
    pub fn take(&self, id: &str) -> Vec<PendingAttach> {
        self.0
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.tx.is_closed())
            .collect()
    }
}

/// Facts about this daemon for `/info` and `/version`.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    /// When the daemon started (for `/events` defaults and `/info`).
    pub started: std::time::SystemTime,
    /// The sockets served, as given (`unix:///run/barge/docker.sock`).
    pub hosts: Vec<String>,
}

impl AppState {
    /// Run engine work on a blocking thread (the engine is sync: SQLite, files, shim
    /// sockets). A panic there fails this request only.
    pub async fn blocking<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        WORK_DONE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(move || f(&engine)).await?
    }
}

/// Engine calls made so far (see [`trim_when_idle`]).
static WORK_DONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Every few seconds, if the daemon has worked since the last look, hand the memory malloc
/// keeps free back to the system: what a burst of requests allocated (JSON documents, a
/// thousand records for `ps`) would otherwise stay resident for good.
/// SQLite's page caches go first (their pages stay in the kernel's cache).
pub async fn trim_when_idle(engine: Arc<Engine>) {
    let mut seen = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now = WORK_DONE.load(std::sync::atomic::Ordering::Relaxed);
        if now != seen {
            seen = now;
            let engine = engine.clone();
            let _ = tokio::task::spawn_blocking(move || {
                engine.db.release_memory();
                engine.images.db.release_memory();
                crate::sys::trim_malloc();
            })
            .await;
        }
    }
}

/// Shorthand for engine results inside [`AppState::blocking`].
pub fn engine<T>(r: barge_engine::Result<T>) -> Result<T, ApiError> {
    r.map_err(ApiError::from)
}
