//! barge images: a content-addressed blob store, image metadata, registry pull and push, docker/OCI
//! archives and an overlayfs snapshotter whose mounts are returned as data.
#![deny(unsafe_code)]

pub mod apply;
pub mod archive;
pub mod config;
pub mod content;
pub mod digest;
pub mod distribution;
pub mod error;
pub mod gc;
pub mod hosts;
pub mod login;
pub mod manifest;
pub mod meta;
pub mod mount;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod snapshot;
pub mod store;
#[allow(unsafe_code)] // the crate's one syscall-facing module
mod sys;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
