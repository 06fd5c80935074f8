//! The agent's log lines (stderr, `barge-edge: ...`); `edge sim` silences them.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Log one line (unless quiet).
pub fn log(msg: impl std::fmt::Display) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("barge-edge: {msg}");
    }
}

/// No more log lines from this process.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}
