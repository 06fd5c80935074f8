//! barge's CRI server: the Kubernetes Container Runtime Interface v1 (`runtime.v1`) over gRPC,
//! translating kubelet's (or crictl's) calls to the engine's typed API.
#![forbid(unsafe_code)]

pub mod proto {
    //! The messages and services generated from `proto/api.proto` (kubernetes/cri-api,
    //! runtime.v1).
    #![allow(clippy::all, clippy::unwrap_used, missing_docs)]
    tonic::include_proto!("runtime.v1");
}
