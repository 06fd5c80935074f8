//! The CRI streaming server (barge-stream) behind Exec, Attach and PortForward.

use std::path::PathBuf;

use barge_stream::{
    AttachRequest, ExecRequest, PortForwardRequest, PortForwardTarget, StreamError, StreamHandle,
};
use tonic::Status;

use crate::status::CriResult;

fn status(e: StreamError) -> Status {
    match e {
        StreamError::Invalid(m) => Status::invalid_argument(m),
        StreamError::TooManyRequests(_) => Status::resource_exhausted(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// The handle's URLs for the RPCs; attach's stdin_once is the container's (checked by the
/// caller: `stdin_once` comes from the container's record).
pub struct Streams {
    pub handle: StreamHandle,
}

impl crate::server::Streaming for Streams {
    fn exec_url(&self, r: &crate::proto::ExecRequest) -> CriResult<String> {
        self.handle
            .exec_url(ExecRequest {
                container_id: r.container_id.clone(),
                cmd: r.cmd.clone(),
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            })
            .map_err(status)
    }

    fn attach_url(&self, r: &crate::proto::AttachRequest, stdin_once: bool) -> CriResult<String> {
        self.handle
            .attach_url(AttachRequest {
                container_id: r.container_id.clone(),
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                stdin_once,
            })
            .map_err(status)
    }

    fn portforward_url(&self, netns: PathBuf, ports: Vec<u16>) -> CriResult<String> {
        self.handle
            .portforward_url(PortForwardRequest {
                target: PortForwardTarget::Netns(netns),
                ports,
            })
            .map_err(status)
    }
}
