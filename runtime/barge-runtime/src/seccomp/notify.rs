//! Handing the seccomp notify listener to the agent at `linux.seccomp.listenerPath`.

use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{at, Context, Error, Result};

/// `ociVersion` of the container process state sent to the agent: the runtime-spec version this
/// runtime implements (as `features` reports).
pub const CONTAINER_PROCESS_STATE_VERSION: &str = "1.2.1";

/// How long an agent that accepted the connection may take to read the state.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Send the listener `fd` to the agent at `path` as runc does: connect a unix stream socket and
/// send the runtime-spec "container process state", `{"ociVersion", "fds": ["seccompFd"],
/// "pid", "metadata", "state"}` (`metadata` is `linux.seccomp.listenerMetadata`, left out when
/// empty; `state` is the container's OCI state), with `fd` attached to it (SCM_RIGHTS). The
/// connection is closed when this returns; the agent keeps its copy of the fd.
pub fn send_to_listener(
    path: &Path,
    metadata: &str,
    pid: i32,
    state: &serde_json::Value,
    fd: BorrowedFd,
) -> Result<()> {
    let mut msg = serde_json::json!({
        "ociVersion": CONTAINER_PROCESS_STATE_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if !metadata.is_empty() {
        msg["metadata"] = metadata.into();
    }
    let data = serde_json::to_vec(&msg)
        .map_err(|e| Error::Container(format!("encode container process state: {e}")))?;
    let stream = UnixStream::connect(path).ctx(|| at("connect to seccomp listener", path))?;
    stream
        .set_write_timeout(Some(SEND_TIMEOUT))
        .ctx(|| at("set send timeout on seccomp listener", path))?;
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&data)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(|| at("send seccomp listener fd to", path))?;
    // A stream socket may take part of a large state; the fd rode with the first part.
    if let Some(rest) = data.get(sent..).filter(|r| !r.is_empty()) {
        (&stream)
            .write_all(rest)
            .ctx(|| at("send container process state to", path))?;
    }
    Ok(())
}
