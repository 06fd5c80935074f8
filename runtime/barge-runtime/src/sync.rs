//! Messages between the runtime and the processes it forks, over a SOCK_SEQPACKET pair.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// One message; each is sent as a single datagram.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// Parent → child: go on (cgroup joined, id maps written, hooks done...).
    Continue,
    /// Intermediate → parent: I have unshared the user namespace; write my id maps.
    WriteIdMaps,
    /// Intermediate → parent: the container init's host pid.
    InitPid(i32),
    /// Init → parent: namespaces and mounts are set up; run prestart/createRuntime hooks.
    RunCreateRuntimeHooks,
    /// Parent → init: the state document for createContainer hooks.
    State(String),
    /// Init → parent: setup complete, waiting on the exec fifo.
    Ready,
    /// Child → parent: setup failed.
    Error(String),
}

/// One end of the sync channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair (parent end, child end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "create sync socketpair".into())?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg)
            .map_err(|e| Error::Container(format!("encode sync message: {e}")))?;
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)
            .ctx(|| "send sync message".into())?;
        Ok(())
    }

    /// Receive one message; a closed peer is an error naming `peer`.
    pub fn recv(&self, peer: &str) -> Result<Msg> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| format!("receive from {peer}"))?,
            }
        };
        if n == 0 {
            return Err(Error::Container(format!(
                "{peer} exited before finishing setup"
            )));
        }
        serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Container(format!("bad sync message from {peer}: {e}")))
    }

    /// Receive and require a specific message; an `Error` from the peer is passed through.
    pub fn expect(&self, want: &Msg, peer: &str) -> Result<()> {
        match self.recv(peer)? {
            ref m if m == want => Ok(()),
            Msg::Error(e) => Err(Error::Container(e)),
            other => Err(Error::Container(format!(
                "{peer} sent {other:?}, expected {want:?}"
            ))),
        }
    }
}
