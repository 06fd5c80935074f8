//! What the CRI server keeps about a container in the engine's labels (kept apart from the
//! CRI labels by the `io.barge.cri.` prefix, and left out when labels are reported).

use std::collections::{BTreeMap, HashMap};

pub const PREFIX: &str = "io.barge.cri.";
/// The CRI container's metadata name and attempt.
pub const NAME: &str = "io.barge.cri.name";
pub const ATTEMPT: &str = "io.barge.cri.attempt";
/// The sandbox (pod id) it belongs to; also on its events (labels are event attributes).
pub const SANDBOX: &str = "io.barge.cri.sandbox";
/// The container's stdin_once ("true"): attach's end of stdin closes the container's.
pub const STDIN_ONCE: &str = "io.barge.cri.stdin-once";
/// The image as the CRI request named it.
pub const IMAGE: &str = "io.barge.cri.image";

/// The CRI labels among `all` (without barge's own).
pub fn public(all: &BTreeMap<String, String>) -> HashMap<String, String> {
    all.iter()
        .filter(|(k, _)| !k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether every `selector` pair is in `labels`.
pub fn select(selector: &HashMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A name usable as an engine name (`[a-zA-Z0-9][a-zA-Z0-9_.-]`, at most 128 bytes) made of
/// `parts` joined by `_`, or None when it would not be one.
pub fn engine_name(parts: &[&str]) -> Option<String> {
    let n = parts.join("_");
    barge_engine::names::validate(&n).ok().map(|_| n)
}
