//! What every handler shares: the engine (one per daemon, over the same store the CLI uses)
//! and the daemon's settings.

use std::sync::Arc;

use barge_engine::Engine;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub info: Arc<DaemonInfo>,
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
        tokio::task::spawn_blocking(move || f(&engine)).await?
    }
}

/// Shorthand for engine results inside [`AppState::blocking`].
pub fn engine<T>(r: barge_engine::Result<T>) -> Result<T, ApiError> {
    r.map_err(ApiError::from)
}
