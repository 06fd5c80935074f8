//! barge's CRI server: the Kubernetes Container Runtime Interface v1 (`runtime.v1`) over gRPC,
//! translating kubelet's (or crictl's) calls to the engine's typed API. One file per concern:
//! `server` (the socket and the services), `status` (engine errors as gRPC statuses),
//! `sandbox` (pod sandboxes), `container` (containers), `security` (security contexts to the
//! engine's config), `logpath` (CRI log paths), `exec` (ExecSync), `stats`, `events`,
//! `images` (ImageService), `runtime` (the RuntimeService methods).
#![forbid(unsafe_code)]

pub mod proto {
    //! The messages and services generated from `proto/api.proto` (kubernetes/cri-api,
    //! runtime.v1).
    #![allow(clippy::all, clippy::unwrap_used, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

mod container;
mod events;
mod exec;
mod images;
mod labels;
mod logpath;
mod runtime;
mod sandbox;
mod security;
pub mod server;
mod stats;
mod status;
mod stream;
mod time;

pub use server::{Cri, Streaming};
pub use stream::Streams;
