//! barge images: a content-addressed blob store, image metadata, registry pull, docker/OCI
//! archives and an overlayfs snapshotter whose mounts are returned as data.

pub mod error;
pub mod unpack;

pub use error::{Error, Result};
