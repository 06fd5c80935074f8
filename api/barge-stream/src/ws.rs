//! Sessions over WebSocket (kubelet's channel protocols): every message starts with its
//! channel (a byte; with the base64 protocols a digit, the rest base64). Exec/attach:
//! 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds a close message
//! (`255, CHANNEL`) for the end of stdin.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::session::{Input, Output, ResizeParser, Session, DEPTH};

/// A negotiated channel protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proto {
    /// Remote command version (1, 4, 5; port forward: 1 or 4).
    pub version: u8,
    /// Binary messages (else text: a channel digit and base64).
    pub binary: bool,
}

const EXEC_PROTOCOLS: &[(&str, Proto)] = &[
    (
        "v5.channel.k8s.io",
        Proto {
            version: 5,
            binary: true,
        },
    ),
    (
        "v4.channel.k8s.io",
        Proto {
            version: 4,
            binary: true,
        },
    ),
    (
        "v4.base64.channel.k8s.io",
        Proto {
            version: 4,
            binary: false,
        },
    ),
    (
        "channel.k8s.io",
        Proto {
            version: 1,
            binary: true,
        },
    ),
    (
        "base64.channel.k8s.io",
        Proto {
            version: 1,
            binary: false,
        },
    ),
];

const PORTFORWARD_PROTOCOLS: &[(&str, Proto)] = &[
    (
        "v4.portforward.k8s.io",
        Proto {
            version: 4,
            binary: true,
        },
    ),
    (
        "v4.base64.portforward.k8s.io",
        Proto {
            version: 4,
            binary: false,
        },
    ),
    (
        "portforward.k8s.io",
        Proto {
            version: 1,
            binary: true,
        },
    ),
    (
        "base64.portforward.k8s.io",
        Proto {
            version: 1,
            binary: false,
        },
    ),
];

/// The protocol for the client's offer (its order wins; no offer: binary v1). `None`: no
/// protocol in common.
pub(crate) fn negotiate(offered: &[String], portforward: bool) -> Option<(String, Proto)> {
    let table = if portforward {
        PORTFORWARD_PROTOCOLS
    } else {
        EXEC_PROTOCOLS
    };
    if offered.is_empty() {
        return Some((
            String::new(),
            Proto {
                version: 1,
                binary: true,
            },
        ));
    }
    offered.iter().find_map(|o| {
        table
            .iter()
            .find(|(n, _)| n == o)
            .map(|(n, p)| (n.to_string(), *p))
    })
}

/// A message on `channel`.
pub(crate) fn message(p: Proto, channel: u8, data: &[u8]) -> Message {
    if p.binary {
        let mut b = Vec::with_capacity(1 + data.len());
        b.push(channel);
        b.extend_from_slice(data);
        Message::Binary(Bytes::from(b))
    } else {
        let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        s.push(char::from(b'0' + channel));
        s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
        Message::Text(s.into())
    }
}

/// A client message's channel and data (`None`: not a data message).
pub(crate) fn parse(p: Proto, m: &Message) -> Option<(u8, Bytes)> {
    match m {
        Message::Binary(b) if p.binary && !b.is_empty() => Some((b[0], b.slice(1..))),
        Message::Text(t) if !p.binary && !t.is_empty() => {
            let t = t.as_str();
            let ch = t.as_bytes()[0].checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&t[1..])
                .ok()?;
            Some((ch, Bytes::from(data)))
        }
        _ => None,
    }
}

/// A close with the normal status (client-go takes a close without one for an error).
pub(crate) fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `255, CHANNEL` closes the client's side of CHANNEL.
const CLOSE: u8 = 255;

/// Run `run` as an exec/attach session on the WebSocket `ws`.
pub(crate) async fn serve_exec<IO, F, Fut>(ws: WebSocketStream<IO>, p: Proto, run: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = mpsc::channel(DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(DEPTH);
    let session = Session {
        version: p.version,
        input: in_rx,
        output: out_tx,
    };
    let reader = tokio::spawn(async move {
        let mut resize = ResizeParser::default();
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
            let Some((ch, data)) = parse(p, &m) else {
                continue;
            };
            let msgs = match ch {
                STDIN if !data.is_empty() => vec![Input::Stdin(data)],
                RESIZE => resize.feed(&data),
                CLOSE if p.version >= 5 && data.first() == Some(&STDIN) => vec![Input::StdinEnd],
                _ => Vec::new(),
            };
            for m in msgs {
                if in_tx.send(m).await.is_err() {
                    return stream;
                }
            }
        }
        drop(in_tx);
        stream
    });
    let pump = async {
        while let Some(o) = out_rx.recv().await {
            let m = match o {
                Output::Stdout(b) => message(p, STDOUT, &b),
                Output::Stderr(b) => message(p, STDERR, &b),
                Output::Error(b) => message(p, ERROR, &b),
            };
            if sink.send(m).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(run(session), pump);
    let _ = sink.send(normal_close()).await;
    // Give the client a moment to answer the close (so nothing sent is lost to a reset).
    let mut reader = reader;
    if tokio::time::timeout(Duration::from_secs(5), &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), sink.close()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_client() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (n, p) = negotiate(&o(&["v5.channel.k8s.io", "v4.channel.k8s.io"]), false).unwrap();
        assert_eq!((n.as_str(), p.version), ("v5.channel.k8s.io", 5));
        let (n, p) = negotiate(&o(&["x", "base64.channel.k8s.io"]), false).unwrap();
        assert_eq!((n.as_str(), p.binary), ("base64.channel.k8s.io", false));
        assert!(negotiate(&o(&["v9.channel.k8s.io"]), false).is_none());
        assert!(negotiate(&o(&["v4.channel.k8s.io"]), true).is_none());
        assert_eq!(negotiate(&[], false).unwrap().1.version, 1);
    }

    #[test]
    fn base64_messages() {
        let p = Proto {
            version: 4,
            binary: false,
        };
        let m = message(p, 1, b"hi");
        assert_eq!(m, Message::Text("1aGk=".into()));
        assert_eq!(parse(p, &m).unwrap(), (1, Bytes::from_static(b"hi")));
    }
}
