//! What a front end and the registry helper (`barge-registry`) say to each other: one request
//! as JSON on the helper's stdin; on its stdout, JSON lines: progress events (when asked
//! for), then one reply. Without events, progress is drawn on the helper's stderr (inherited
//! from the front end, so bars still draw on a terminal).

use std::path::PathBuf;

use barge_image::progress::{Event, LayerState};
use serde::{Deserialize, Serialize};

/// Credentials for one pull (docker's `X-Registry-Auth`), instead of the stored ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The registry they are for; empty: the registry of the image pulled.
    #[serde(default)]
    pub server: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Pull `image` into the store at `root`.
    Pull {
        root: PathBuf,
        config: PathBuf,
        image: String,
        /// os/arch[/variant]; the host's when absent.
        platform: Option<String>,
        insecure: bool,
        /// No progress output.
        quiet: bool,
        /// Progress as [`Reply::Progress`] lines on stdout instead of drawn on stderr.
        #[serde(default)]
        events: bool,
        #[serde(default)]
        auth: Option<Credentials>,
    },
    /// What the registry offers for `image` without pulling it (docker's
    /// `/distribution/NAME/json`).
    Distribution {
        config: PathBuf,
        image: String,
        #[serde(default)]
        auth: Option<Credentials>,
    },
    /// Push the stored image `image` (a name or ID) to `target` (`registry/repo[:tag]`).
    Push {
        root: PathBuf,
        config: PathBuf,
        image: String,
        target: String,
        insecure: bool,
        /// No progress output.
        quiet: bool,
        /// Progress as [`Reply::Progress`] lines on stdout instead of drawn on stderr.
        #[serde(default)]
        events: bool,
        #[serde(default)]
        auth: Option<Credentials>,
    },
    /// Check credentials against `server` (docker login); storing them is barge's job.
    Login {
        config: PathBuf,
        server: String,
        user: String,
        password: String,
        insecure: bool,
    },
}

/// One step of a pull, as docker's progress stream shows it: `id` is a layer's short digest
/// (or the tag being pulled), `status` docker's text ("Pulling fs layer", "Downloading",
/// "Pull complete"...), with byte counts while downloading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullEvent {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub current: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
}

impl PullEvent {
    /// The docker-style event for a pull's progress event, if it shows as one.
    pub fn from_image(e: &Event) -> Option<PullEvent> {
        let ev = |id: String, status: &str| PullEvent {
            id,
            status: status.to_string(),
            ..Default::default()
        };
        match e {
            Event::Resolved { reference, .. } => {
                // docker's line: the tag (or digest), and the repository's path without its
                // registry ("latest: Pulling from library/busybox").
                let parsed = barge_image::reference::ImageRef::parse(reference).ok()?;
                let tag = parsed
                    .tag()
                    .map(str::to_string)
                    .or_else(|| parsed.digest().map(|d| d.to_string()))
                    .unwrap_or_else(|| "latest".into());
                Some(ev(tag, &format!("Pulling from {}", parsed.repository())))
            }
            Event::Layer { digest, state } => {
                let id = digest.short().to_string();
                Some(match state {
                    LayerState::Exists => ev(id, "Already exists"),
                    LayerState::Waiting => ev(id, "Waiting"),
                    LayerState::Downloading { done, total } => PullEvent {
                        current: Some(*done),
                        total: Some(*total),
                        ..ev(id, "Downloading")
                    },
                    LayerState::Resuming { from } => PullEvent {
                        current: Some(*from),
                        ..ev(id, "Downloading")
                    },
                    LayerState::Retrying { attempt, .. } => {
                        ev(id, &format!("Retrying (attempt {attempt})"))
                    }
                    LayerState::Extracting => ev(id, "Extracting"),
                    LayerState::Complete => ev(id, "Pull complete"),
                    LayerState::Preparing => ev(id, "Preparing"),
                    LayerState::Pushing { done, total } => PullEvent {
                        current: Some(*done),
                        total: Some(*total),
                        ..ev(id, "Pushing")
                    },
                    LayerState::RemoteExists => ev(id, "Layer already exists"),
                    LayerState::Mounted { from } => ev(id, &format!("Mounted from {from}")),
                    LayerState::Pushed => ev(id, "Pushed"),
                })
            }
            Event::PushStarted { repository } => Some(ev(
                String::new(),
                &format!("The push refers to repository [{repository}]"),
            )),
            Event::Done { .. } => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Pulled {
        /// What the name resolved to (docker's "Digest:").
        digest: String,
        /// The stored name.
        name: String,
        /// The name already had this image's config before the pull.
        up_to_date: bool,
    },
    LoggedIn,
    /// A push put its manifest: docker's `TAG: digest: DIGEST size: SIZE`.
    Pushed {
        /// `registry/repository:tag` pushed to.
        reference: String,
        tag: String,
        digest: String,
        size: u64,
    },
    /// The descriptor `image` resolves to and the platforms it offers, as docker's JSON.
    Described {
        descriptor: serde_json::Value,
        platforms: Vec<serde_json::Value>,
    },
    /// The request failed: the whole error chain, as `barge: ...` would print it.
    Failed {
        error: String,
        /// What kind of failure, for a caller that must decide (the API's status code):
        /// `not_found`, `bad_parameter`, `unavailable` or `internal` (absent: internal).
        #[serde(default)]
        kind: Option<String>,
    },
    /// A step of a pull (only with `events`); more lines follow.
    Progress(PullEvent),
}
