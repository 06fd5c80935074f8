//! The hub<->edge connection: TLS 1.3 (ALPN [`crate::ALPN`]) from the edge to the hub's
//! `--listen` port, carrying frames: a 4-byte big-endian length, then that many bytes of
//! JSON (one [`EdgeMsg`] or [`HubMsg`]). Frames over [`MAX_FRAME`] are a protocol error.
//!
//! Conversation:
//! 1. The edge's first frame is one of:
//!    - [`EdgeMsg::Join`] (no client certificate; the edge pinned the hub CA from the
//!      token) -> [`HubMsg::Joined`] or [`HubMsg::Error`], then the hub closes;
//!    - [`EdgeMsg::Renew`] with a client certificate that may have expired within the hub's
//!      grace window -> [`HubMsg::Renewed`] or `Error`, then the hub closes;
//!    - [`EdgeMsg::Hello`] with a valid client certificate whose CN is `node:<name>` ->
//!      [`HubMsg::Welcome`], then the session below. Anything else -> `Error` and close.
//! 2. Session: the hub sends [`HubMsg::Sync`] batches (the node's desired objects; the first
//!    one answers the Hello's inventory), the edge answers each with [`EdgeMsg::Ack`] once the
//!    batch is durable in its SQLite cache. The edge sends [`EdgeMsg::PodStatus`] and
//!    [`EdgeMsg::NodeStatus`] (coalesced, batched) and the hub stores them (a `PodStatus`
//!    with a `seq` is answered with [`HubMsg::StatusAck`] once stored). Either side sends
//!    `Ping` every `heartbeat_secs` and drops the link after three missed.
//! 3. Tunnels: the hub opens a stream (`Exec`, `Logs`, `Connect`) with a fresh `stream` id;
//!    both sides send `Data` on it; the edge ends it with `StreamEnd` (exit code or error);
//!    the hub may `Cancel` it. Stream ids are chosen by the hub and unique per connection.
//!    `Connect` (the ServiceBus) is a raw TCP stream: hub->edge bytes on fd 0 (empty data
//!    half-closes), edge->hub bytes on fd 1, `StreamEnd` when the edge's socket closes.
//! 4. Twins: the edge sends [`EdgeMsg::Twin`] reports (reported values, desired values
//!    edited on the edge, device state) from its durable outbox, numbered by `seq`; the hub
//!    answers [`HubMsg::TwinAck`] once they are merged into etcd, and the edge drops what
//!    was acked. Merging is idempotent (by version), so a report resent after a reconnect
//!    changes nothing. Desired values travel down inside `Device` objects in `Sync`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::device::{DesiredEdit, Versioned};
use crate::object::{NodeInfo, NodeUsage, ObjKey, Object, PodStatus};

/// Largest frame either side accepts (bytes of JSON).
pub const MAX_FRAME: usize = 16 << 20;

/// Edge -> hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EdgeMsg {
    /// First contact: a one-time token and a CSR (PEM) whose key never leaves the device.
    /// The CSR's subject CN must be `node:<name>`.
    #[serde(rename_all = "camelCase")]
    Join {
        protocol: u32,
        token: String,
        name: String,
        labels: BTreeMap<String, String>,
        csr_pem: String,
        info: NodeInfo,
    },
    /// Ask for a new certificate for a new key (CSR PEM, CN `node:<name>`). Sent as the first
    /// frame of a connection made with the current (possibly expired, within grace)
    /// certificate, or during a session.
    #[serde(rename_all = "camelCase")]
    Renew {
        csr_pem: String,
    },
    /// Start a session. `revision` is the highest revision of any batch the edge has acked
    /// (0: none); `inventory` is every object it holds with its revision, so the hub sends
    /// only what differs (changed, new, or to delete).
    #[serde(rename_all = "camelCase")]
    Hello {
        protocol: u32,
        name: String,
        revision: i64,
        inventory: Vec<Held>,
        info: NodeInfo,
    },
    /// The batch that ended at `revision` is durable on the edge.
    #[serde(rename_all = "camelCase")]
    Ack {
        revision: i64,
    },
    /// Pod statuses, coalesced per pod (latest wins). `gone` lists pods removed on the edge.
    /// `seq` (optional, numbered per connection by the edge) asks the hub for a
    /// [`HubMsg::StatusAck`] once this message is stored: the edge keeps sending its `gone`
    /// pods, on every new connection, until they are acked (a removal is not lost with a
    /// link that drops right after it was sent). Edges without `seq` get no ack.
    #[serde(rename_all = "camelCase")]
    PodStatus {
        pods: Vec<PodReport>,
        #[serde(default)]
        gone: Vec<ObjKey>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Node heartbeat content: resource use (sent every `heartbeat_secs`, and on change).
    #[serde(rename_all = "camelCase")]
    NodeStatus {
        usage: NodeUsage,
    },
    /// Output (fd 1 or 2) or stdin echo of a tunnel stream; `data` is base64.
    #[serde(rename_all = "camelCase")]
    Data {
        stream: u32,
        fd: u8,
        data: String,
    },
    /// A tunnel stream ended: the process's exit code, or why it could not run.
    #[serde(rename_all = "camelCase")]
    StreamEnd {
        stream: u32,
        #[serde(default)]
        exit_code: Option<i32>,
        #[serde(default)]
        error: Option<String>,
    },
    /// Device twin reports from the edge's outbox; `seq` is the highest outbox entry in this
    /// message (acked by [`HubMsg::TwinAck`]).
    #[serde(rename_all = "camelCase")]
    Twin {
        seq: u64,
        devices: Vec<TwinReport>,
    },
    Ping,
    Pong,
}

/// What changed on the edge for one device. `key` is the fleet Device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwinReport {
    pub key: ObjKey,
    #[serde(default)]
    pub properties: Vec<PropertyReport>,
    /// `online`/`offline`/`unknown` from the mapper's `state/update`, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// One property's news: a reported value, and/or a desired value set on the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyReport {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Versioned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<DesiredEdit>,
}

/// What a `Connect` stream reaches on the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "camelCase")]
pub enum ConnectTarget {
    /// `127.0.0.1:port` on the device (host-network services, published ports).
    Host { port: u16 },
    /// A port on a pod's own IP.
    Pod {
        namespace: String,
        pod: String,
        port: u16,
    },
}

/// One object the edge holds: its key and revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub key: ObjKey,
    pub revision: i64,
}

/// A pod's status from the edge. `key` is the fleet Pod (kind Pod, namespace, name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    pub key: ObjKey,
    pub status: PodStatus,
}

/// Hub -> edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum HubMsg {
    /// Join accepted: the node certificate (PEM), the CA bundle to trust (PEM, one or more
    /// CAs: during a CA rotation both), and the hubs' edge endpoints (`host:port`).
    #[serde(rename_all = "camelCase")]
    Joined {
        cert_pem: String,
        ca_bundle_pem: String,
        hubs: Vec<String>,
    },
    /// A renewed certificate (and the current CA bundle).
    #[serde(rename_all = "camelCase")]
    Renewed {
        cert_pem: String,
        ca_bundle_pem: String,
    },
    /// Session accepted.
    #[serde(rename_all = "camelCase")]
    Welcome {
        /// The hub's id (for logs).
        hub: String,
        /// The fleet's revision now.
        revision: i64,
        /// Every hub's edge endpoint (`host:port`), to try when this one is gone.
        hubs: Vec<String>,
        /// Ping interval both sides use.
        heartbeat_secs: u64,
        /// The current CA bundle (PEM); the edge replaces its trust bundle when it differs.
        ca_bundle_pem: String,
        /// Renew the certificate now (it is past two thirds of its life, or the CA changed).
        renew: bool,
    },
    /// Desired-state changes for this node, in revision order. With `full`, the batch is the
    /// node's complete desired set: the edge drops every object not in it. `revision` is the
    /// revision the edge acks when the batch is durable.
    #[serde(rename_all = "camelCase")]
    Sync {
        revision: i64,
        #[serde(default)]
        full: bool,
        changes: Vec<Change>,
    },
    /// Open a tunnel stream: run a command in a pod's container.
    #[serde(rename_all = "camelCase")]
    Exec {
        stream: u32,
        namespace: String,
        pod: String,
        /// Container name in the pod spec (the first when empty).
        #[serde(default)]
        container: String,
        cmd: Vec<String>,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        tty: bool,
    },
    /// Open a tunnel stream: a container's logs (`follow` keeps it open).
    #[serde(rename_all = "camelCase")]
    Logs {
        stream: u32,
        namespace: String,
        pod: String,
        #[serde(default)]
        container: String,
        #[serde(default)]
        follow: bool,
        #[serde(default)]
        tail: Option<u64>,
        #[serde(default)]
        timestamps: bool,
    },
    /// Open a tunnel stream: a TCP connection from the edge to `target` (the ServiceBus).
    #[serde(rename_all = "camelCase")]
    Connect {
        stream: u32,
        target: ConnectTarget,
    },
    /// The twin reports up to `seq` are merged into etcd.
    #[serde(rename_all = "camelCase")]
    TwinAck {
        seq: u64,
    },
    /// The `PodStatus` messages up to `seq` are stored in etcd (sent only to an edge whose
    /// `PodStatus` carried a `seq`).
    #[serde(rename_all = "camelCase")]
    StatusAck {
        seq: u64,
    },
    /// stdin for a stream (fd 0; empty data closes stdin), base64.
    #[serde(rename_all = "camelCase")]
    Data {
        stream: u32,
        fd: u8,
        data: String,
    },
    /// Stop a stream (kill the exec, stop following logs).
    #[serde(rename_all = "camelCase")]
    Cancel {
        stream: u32,
    },
    /// Refused or failed: `code` is one of [`codes`]; the hub closes after sending it.
    #[serde(rename_all = "camelCase")]
    Error {
        code: String,
        message: String,
    },
    Ping,
    Pong,
}

/// One desired-state change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Change {
    /// Create or replace (the object's `metadata.resourceVersion` is its revision).
    Put { object: Box<Object> },
    /// Remove.
    #[serde(rename_all = "camelCase")]
    Delete { key: ObjKey, revision: i64 },
}

/// `HubMsg::Error` codes.
pub mod codes {
    /// The join token is unknown, used or expired.
    pub const BAD_TOKEN: &str = "badToken";
    /// The node was revoked; it must join again with a new token.
    pub const REVOKED: &str = "revoked";
    /// No certificate, a certificate the hub did not issue, or one expired past the grace.
    pub const BAD_CERTIFICATE: &str = "badCertificate";
    /// The name is taken by another node (join), or does not match the certificate.
    pub const NAME_CONFLICT: &str = "nameConflict";
    /// A message the hub did not expect, or a malformed one.
    pub const PROTOCOL: &str = "protocol";
    /// The edge asked for something that is not its own (another node's pod).
    pub const FORBIDDEN: &str = "forbidden";
    /// The hub cannot serve right now (etcd unreachable); retry with backoff.
    pub const UNAVAILABLE: &str = "unavailable";
}

/// Framing errors.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// A message as one frame (length prefix + JSON).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The length a frame header announces (checked against [`MAX_FRAME`]).
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(header) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    Ok(n)
}

/// A frame's body as a message.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// Base64 for `Data` frames.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `Data` frames' payload back to bytes.
pub fn unb64(data: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;

    #[test]
    fn frames_round_trip() {
        let m = EdgeMsg::Ack { revision: 42 };
        let f = encode(&m).unwrap();
        let n = frame_len([f[0], f[1], f[2], f[3]]).unwrap();
        assert_eq!(n, f.len() - 4);
        let back: EdgeMsg = decode(&f[4..]).unwrap();
        assert!(matches!(back, EdgeMsg::Ack { revision: 42 }));
        assert!(frame_len(((MAX_FRAME + 1) as u32).to_be_bytes()).is_err());
        let d = HubMsg::Sync {
            revision: 7,
            full: false,
            changes: vec![Change::Delete {
                key: ObjKey {
                    kind: Kind::Pod,
                    namespace: "default".into(),
                    name: "web".into(),
                },
                revision: 7,
            }],
        };
        let s = serde_json::to_string(&d).unwrap();
        assert!(
            s.contains(r#""type":"sync""#) && s.contains(r#""op":"delete""#),
            "{s}"
        );
        assert!(decode::<HubMsg>(b"{\"type\":\"nope\"}").is_err());
    }
}
