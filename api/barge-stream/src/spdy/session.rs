//! An exec or attach session over SPDY (kubelet's remotecommand protocols v1..v4): the
//! client opens one stream per channel, named by its `streamType` header (error, stdin,
//! stdout, stderr, resize); the session starts once all the expected ones are there.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::conn::{Conn, Event};
use super::frame::header;
use crate::session::{Input, Output, ResizeParser, Session, DEPTH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Error,
    Stdin,
    Stdout,
    Stderr,
    Resize,
}

/// The streams the client must open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Run `run` as a session on the upgraded connection `io` speaking protocol `version`.
pub(crate) async fn serve<IO, F, Fut>(io: IO, version: u8, want: Want, timeout: Duration, run: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut conn = Conn::start(io);
    let mut needed = vec![Kind::Error];
    if want.stdin {
        needed.push(Kind::Stdin);
    }
    if want.stdout {
        needed.push(Kind::Stdout);
    }
    if want.stderr && !want.tty {
        needed.push(Kind::Stderr);
    }
    if want.tty && version >= 3 {
        needed.push(Kind::Resize);
    }
    let mut ids: HashMap<Kind, u32> = HashMap::new();
    let mut kinds: HashMap<u32, Kind> = HashMap::new();
    let mut early: Vec<Event> = Vec::new();
    let wait = async {
        while !needed.iter().all(|k| ids.contains_key(k)) {
            match conn.events.recv().await {
                Some(Event::Open { id, headers, fin }) => {
                    let kind = match header(&headers, "streamtype") {
                        Some("error") => Kind::Error,
                        Some("stdin") => Kind::Stdin,
                        Some("stdout") => Kind::Stdout,
                        Some("stderr") => Kind::Stderr,
                        Some("resize") => Kind::Resize,
                        other => {
                            tracing::debug!("spdy: stream {id} of unknown type {other:?}");
                            conn.writer.reset(id, super::frame::REFUSED_STREAM).await;
                            continue;
                        }
                    };
                    ids.insert(kind, id);
                    kinds.insert(id, kind);
                    if fin {
                        // Opened and closed at once (an empty stdin).
                        early.push(Event::Data {
                            id,
                            data: Bytes::new(),
                            fin,
                        });
                    }
                }
                Some(ev) => early.push(ev),
                None => return false,
            }
        }
        true
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(true) => {}
        Ok(false) => return conn.finish().await,
        Err(_) => {
            tracing::debug!("spdy: timed out waiting for the client to create streams");
            return conn.finish().await;
        }
    }

    let (in_tx, in_rx) = mpsc::channel(DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(DEPTH);
    let session = Session {
        version,
        input: in_rx,
        output: out_tx,
    };
    // Client → session, in order.
    let mut events = std::mem::replace(&mut conn.events, mpsc::channel(1).1);
    let translate = async move {
        let mut resize = ResizeParser::default();
        let mut pending = early.into_iter();
        loop {
            let ev = match pending.next() {
                Some(ev) => ev,
                None => match events.recv().await {
                    Some(ev) => ev,
                    None => break,
                },
            };
            let (id, data, fin) = match ev {
                Event::Data { id, data, fin } => (id, data, fin),
                Event::Reset { id } => (id, Bytes::new(), true),
                Event::Open { .. } => continue,
            };
            let mut msgs = Vec::new();
            match kinds.get(&id) {
                Some(Kind::Stdin) => {
                    if !data.is_empty() {
                        msgs.push(Input::Stdin(data));
                    }
                    if fin {
                        msgs.push(Input::StdinEnd);
                    }
                }
                Some(Kind::Resize) => msgs.extend(resize.feed(&data)),
                _ => {}
            }
            for m in msgs {
                if in_tx.send(m).await.is_err() {
                    return events;
                }
            }
        }
        // The client is gone: dropping `in_tx` tells the session.
        drop(in_tx);
        events
    };
    // Session → client.
    let writer = conn.writer.clone();
    let pump = async move {
        let id_of = |k: Kind| ids.get(&k).copied();
        let mut error_done = false;
        while let Some(o) = out_rx.recv().await {
            let (id, data, fin) = match o {
                Output::Stdout(b) => (id_of(Kind::Stdout), b, false),
                Output::Stderr(b) => (
                    id_of(Kind::Stderr).or_else(|| id_of(Kind::Stdout)),
                    b,
                    false,
                ),
                Output::Error(b) => {
                    error_done = true;
                    (id_of(Kind::Error), Bytes::from(b), true)
                }
            };
            if let Some(id) = id {
                if !writer.data(id, data, fin).await {
                    return;
                }
            }
        }
        // The session is over: end the streams.
        for k in [Kind::Stdout, Kind::Stderr, Kind::Error] {
            if k == Kind::Error && error_done {
                continue;
            }
            if let Some(id) = id_of(k) {
                writer.data(id, Bytes::new(), true).await;
            }
        }
    };
    let translated = tokio::spawn(translate);
    tokio::join!(run(session), pump);
    translated.abort();
    if let Ok(ev) = translated.await {
        conn.events = ev;
    }
    conn.finish().await;
}
