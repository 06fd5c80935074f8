//! Docker-format output shared by every front end (the `barge` CLI, the API daemon): the JSON
//! documents and list entries docker's clients read, with docker's field names. One file per
//! kind of object; the functions build `serde_json::Value`s from the engine's records.

pub mod container;
pub mod image;
pub mod list;
pub mod network;
pub mod ports;
pub mod stats;
pub mod system;
pub mod time;
pub mod volume;

/// The first 12 characters of an id, as docker shows it.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
