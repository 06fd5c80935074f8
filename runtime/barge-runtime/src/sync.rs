//! Messages between the runtime and the processes it forks, over a SOCK_SEQPACKET pair.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
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
    /// Init → parent: the seccomp notify listener fd rides along (SCM_RIGHTS); hand it to
    /// `linux.seccomp.listenerPath`.
    SeccompFd,
    /// Init → parent: setup complete, waiting on the exec fifo.
    Ready,
    /// Child → parent: setup failed.
    Error(String),
    /// Child → parent: the program could not be executed (see [`Error::ExecFailed`]).
    ExecFailed(crate::error::ExecFailure, String),
}

impl Msg {
    /// The message reporting `e` (keeping why a program could not be executed).
    pub fn failure(e: &Error) -> Msg {
        match e {
            Error::ExecFailed { reason, message } => Msg::ExecFailed(*reason, message.clone()),
            other => Msg::Error(other.to_string()),
        }
    }

    /// The error a failure message reports (`Msg::Error` or `Msg::ExecFailed`).
    pub fn into_error(self) -> Error {
        match self {
            Msg::ExecFailed(reason, message) => Error::ExecFailed { reason, message },
            Msg::Error(e) => Error::Container(e),
            other => Error::Container(format!("unexpected {other:?}")),
        }
    }
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

    /// Send a message with an fd attached.
    pub fn send_fd(&self, msg: &Msg, fd: BorrowedFd) -> Result<()> {
        let data = serde_json::to_vec(msg)
            .map_err(|e| Error::Container(format!("encode sync message: {e}")))?;
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&data)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .ctx(|| "send sync message with fd".into())?;
        Ok(())
    }

    /// Receive one message and the fd attached to it, if any.
    pub fn recv_fd(&self, peer: &str) -> Result<(Msg, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx(|| format!("receive from {peer}")),
                Ok(m) => {
                    let mut fd = None;
                    for c in m.cmsgs().ctx(|| format!("read fds from {peer}"))? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            fd = fds.first().copied();
                        }
                    }
                    break (m.bytes, fd);
                }
            }
        };
        // The kernel just installed this fd in our table (SCM_RIGHTS); nothing else owns it.
        let fd = fd.map(crate::sys::own_fd);
        if n == 0 {
            return Err(Error::Container(format!(
                "{peer} exited before finishing setup"
            )));
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Container(format!("bad sync message from {peer}: {e}")))?;
        Ok((msg, fd))
    }

    /// Receive one message; a closed peer is an error naming `peer`.
    pub fn recv(&self, peer: &str) -> Result<Msg> {
        // The datagram's length first (MSG_PEEK | MSG_TRUNC), then a buffer of just that size:
        // in the container's processes every page written is charged to the container's
        // memory cgroup, and a zeroed 64 KiB buffer was 16 of them.
        let len = loop {
            match recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| format!("receive from {peer}"))?,
            }
        };
        if len == 0 {
            return Err(Error::Container(format!(
                "{peer} exited before finishing setup"
            )));
        }
        let mut buf = vec![0u8; len];
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
            m @ (Msg::Error(_) | Msg::ExecFailed(..)) => Err(m.into_error()),
            other => Err(Error::Container(format!(
                "{peer} sent {other:?}, expected {want:?}"
            ))),
        }
    }
}
