//! barge's event journal: what happened to containers, images, networks and volumes, in
//! docker's event model, kept in one bounded file of the store so every front end (the CLI,
//! the daemon's `/events`, `wait`) and every writer (engine processes, shims, the image store)
//! share it.
//!
//! - [`event`]: the typed [`Event`] and its docker JSON form (one journal line).
//! - [`journal`]: appending (one `write(2)` per event on an `O_APPEND` descriptor: atomic
//!   between concurrent writers), rotation (`journal.jsonl` → `journal.1.jsonl` past a size,
//!   under an exclusive `flock`), reading.
//! - [`follow`]: replay then tail the journal with inotify, across rotations.
#![forbid(unsafe_code)]

pub mod event;
pub mod follow;
pub mod journal;

pub use event::{Action, Actor, Event, Type};
pub use follow::{Follower, JournalWatch};
pub use journal::Journal;
