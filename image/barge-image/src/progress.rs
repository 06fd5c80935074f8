//! What a pull, load or push reports while it runs; the CLI renders it (bars on a terminal,
//! plain lines otherwise).

use crate::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerState {
    /// Already unpacked and stored.
    Exists,
    Waiting,
    /// Downloading; `done` bytes of `total` present (including what an earlier attempt left).
    Downloading {
        done: u64,
        total: u64,
    },
    /// An earlier interrupted download continues at `from`.
    Resuming {
        from: u64,
    },
    /// A network error; retrying after a pause.
    Retrying {
        attempt: u32,
        error: String,
    },
    /// Downloaded and verified; the unpacking finishes.
    Extracting,
    Complete,
    /// Push: about to be checked against the registry.
    Preparing,
    /// Push: uploading; `done` bytes of `total` accepted so far.
    Pushing {
        done: u64,
        total: u64,
    },
    /// Push: the registry already has this blob (nothing sent).
    RemoteExists,
    /// Push: the registry linked it from another repository (`from`) without an upload.
    Mounted {
        from: String,
    },
    /// Push: uploaded and accepted.
    Pushed,
}

#[derive(Clone, Debug)]
pub enum Event {
    Resolved {
        reference: String,
        digest: Digest,
    },
    Layer {
        digest: Digest,
        state: LayerState,
    },
    Done {
        reference: String,
        digest: Digest,
    },
    /// A push to `repository` (`registry/path`) begins.
    PushStarted {
        repository: String,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}
