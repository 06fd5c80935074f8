//! What `barge` and its registry helper (`barge-registry`) say to each other: one request as
//! JSON on the helper's stdin, one reply as JSON on its stdout. Progress goes to the helper's
//! stderr (inherited from barge, so bars still draw on a terminal).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// The request failed: the whole error chain, as `barge: ...` would print it.
    Failed {
        error: String,
    },
}
