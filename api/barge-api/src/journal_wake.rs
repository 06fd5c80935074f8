//! Waiting for the engine's event journal without a thread: a `docker wait`, the wait every
//! `docker run` makes, a `docker events` stream. The daemon watches the journal once (one
//! inotify instance, where the kernel allows 128 per user; its fd registered with tokio) and
//! bumps a counter when it changes; each waiter holds a passive subscription (just the
//! journal file it reads) and asks the engine to look, a moment on the blocking pool, only
//! when the counter moved. So a hundred waiting clients cost no thread, never starve the
//! pool that every other request needs, and use one fd each.

use std::sync::OnceLock;
use std::time::Duration;

use barge_engine::Engine;
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

/// The journal's change counter, watched from the first waiter on.
pub struct JournalWake {
    tx: watch::Sender<u64>,
    started: OnceLock<Result<(), String>>,
}

impl Default for JournalWake {
    fn default() -> JournalWake {
        JournalWake {
            tx: watch::Sender::new(0),
            started: OnceLock::new(),
        }
    }
}

/// One waiter's view of the counter.
pub struct Wake(watch::Receiver<u64>);

impl JournalWake {
    /// A view for one waiter; call it before the waiter subscribes (a change in between
    /// then wakes it). The watch starts at the first call (inside the runtime).
    pub fn waiter(&self, engine: &Engine) -> ApiResult<Wake> {
        self.started
            .get_or_init(|| self.start(engine))
            .clone()
            .map_err(ApiError::internal)?;
        Ok(Wake(self.tx.subscribe()))
    }

    fn start(&self, engine: &Engine) -> Result<(), String> {
        let watch = engine.watch_journal().map_err(|e| e.to_string())?;
        let fd = watch
            .fd()
            .try_clone_to_owned()
            .and_then(crate::sys::async_readable)
            .map_err(|e| format!("watch the event journal: {e}"))?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            // Readiness is cleared and the queue emptied before the bump: a change after
            // them is a new edge, and a new bump.
            while let Ok(mut ready) = fd.readable().await {
                ready.clear_ready();
                watch.clear();
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
        Ok(())
    }
}

impl Wake {
    /// Mark what is there as seen: call it before asking the engine to look.
    pub fn seen(&mut self) {
        self.0.borrow_and_update();
    }

    /// Until the journal changed since [`Wake::seen`], or `timeout` (`None`: no limit).
    pub async fn changed(&mut self, timeout: Option<Duration>) {
        let changed = async {
            if self.0.changed().await.is_err() {
                // The daemon is stopping: do not spin meanwhile.
                std::future::pending::<()>().await;
            }
        };
        match timeout {
            Some(t) => {
                let _ = tokio::time::timeout(t, changed).await;
            }
            None => changed.await,
        }
    }
}
