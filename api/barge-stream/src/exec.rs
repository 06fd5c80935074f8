//! Exec and attach sessions through the engine: the process's stdio relayed by the
//! container's shim (`Engine::exec_start_attached`, `Engine::attach_socket`), its exit code
//! from the shim's last frame, terminal sizes through `Engine::exec_resize` / `resize`.

use std::sync::Arc;
use std::time::Duration;

use barge_engine::container::Streams;
use barge_engine::exec::ExecOptions;
use barge_engine::frames::{parse_header, EXIT, STDERR, STDOUT};
use barge_engine::Engine;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::session::{Input, Output, Session};
use crate::status::{error_stream_bytes, ExitStatus};
use crate::{AttachRequest, ExecRequest};

/// Whose terminal a resize goes to.
#[derive(Clone)]
enum Target {
    Exec(String),
    Container(String),
}

/// How long an exec with a terminal waits for the client's first size before it starts
/// (kubectl sends it as soon as its streams are open; a process started before it would see a
/// 0x0 terminal).
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(500);

/// Run `req` for the session's client; ends with the status on the error stream.
pub(crate) async fn exec(engine: Arc<Engine>, req: ExecRequest, mut s: Session) {
    let mut first = None;
    let mut size = None;
    if req.tty {
        match tokio::time::timeout(FIRST_SIZE_WAIT, s.input.recv()).await {
            Ok(Some(Input::Resize { width, height })) if width > 0 && height > 0 => {
                size = Some((height, width));
            }
            Ok(Some(other)) => first = Some(other),
            // The client is gone: start nothing.
            Ok(None) => return,
            Err(_) => {}
        }
    }
    let e = engine.clone();
    let started = tokio::task::spawn_blocking(move || {
        let opts = ExecOptions {
            cmd: req.cmd.clone(),
            tty: req.tty,
            interactive: req.stdin,
            ..Default::default()
        };
        let id = e.exec_create(&req.container_id, &opts)?;
        let streams = Streams {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        e.exec_start_attached_sized(&id, streams, size)
            .map(|sock| (id, sock))
    })
    .await;
    let status = match started {
        Ok(Ok((id, sock))) => {
            let input = Pending {
                first,
                rest: s.input,
            };
            relay(engine, sock, Target::Exec(id), true, input, &s.output).await
        }
        Ok(Err(barge_engine::Error::StartFailed { code, msg })) => {
            // As a runtime reports a program that cannot run: its message, its code.
            let _ = s
                .output
                .send(Output::Stderr(Bytes::from(format!("{msg}\n"))))
                .await;
            Some(ExitStatus::Exited(code))
        }
        Ok(Err(e)) => Some(ExitStatus::Failed(e.to_string())),
        Err(e) => Some(ExitStatus::Failed(format!("exec: {e}"))),
    };
    finish(s.version, status, &s.output).await;
}

/// Attach the session's client to a running container.
pub(crate) async fn attach(engine: Arc<Engine>, req: AttachRequest, s: Session) {
    let e = engine.clone();
    let key = req.container_id.clone();
    let started = tokio::task::spawn_blocking(move || {
        let rec = e.db.find(&key)?;
        let streams = Streams {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        e.attach_socket(&rec.id, streams).map(|sock| (rec.id, sock))
    })
    .await;
    let status = match started {
        Ok(Ok((id, sock))) => {
            relay(
                engine,
                sock,
                Target::Container(id),
                req.stdin_once,
                Pending {
                    first: None,
                    rest: s.input,
                },
                &s.output,
            )
            .await
        }
        Ok(Err(e)) => Some(ExitStatus::Failed(e.to_string())),
        Err(e) => Some(ExitStatus::Failed(format!("attach: {e}"))),
    };
    finish(s.version, status, &s.output).await;
}

/// The last word of a session: its status on the error stream (the output channel's end
/// closes the streams).
async fn finish(version: u8, status: Option<ExitStatus>, out: &tokio::sync::mpsc::Sender<Output>) {
    let Some(status) = status else {
        return; // The client went away: nobody to tell.
    };
    if let Some(b) = error_stream_bytes(version, &status) {
        let _ = out.send(Output::Error(b)).await;
    }
}

/// The client's input: one message already taken, then the rest.
struct Pending {
    first: Option<Input>,
    rest: tokio::sync::mpsc::Receiver<Input>,
}

impl Pending {
    async fn next(&mut self) -> Option<Input> {
        match self.first.take() {
            Some(i) => Some(i),
            None => self.rest.recv().await,
        }
    }
}

/// Relay between the shim's socket and the session until the process's exit (its status) or
/// the client's departure (`None`; dropping the socket hangs the process up).
async fn relay(
    engine: Arc<Engine>,
    sock: std::os::unix::net::UnixStream,
    target: Target,
    close_stdin: bool,
    mut input: Pending,
    out: &tokio::sync::mpsc::Sender<Output>,
) -> Option<ExitStatus> {
    if let Err(e) = sock.set_nonblocking(true) {
        return Some(ExitStatus::Failed(format!("shim socket: {e}")));
    }
    let sock = match tokio::net::UnixStream::from_std(sock) {
        Ok(s) => s,
        Err(e) => return Some(ExitStatus::Failed(format!("shim socket: {e}"))),
    };
    let (mut rd, mut wr) = sock.into_split();
    let output = async {
        let mut h = [0u8; 8];
        loop {
            if rd.read_exact(&mut h).await.is_err() {
                return Some(ExitStatus::Failed(
                    "the container's shim closed the stream without an exit code".into(),
                ));
            }
            let (stream, len) = parse_header(&h);
            let mut buf = vec![0u8; len];
            if rd.read_exact(&mut buf).await.is_err() {
                return Some(ExitStatus::Failed(
                    "the container's shim closed the stream in a frame".into(),
                ));
            }
            let msg = match stream {
                STDOUT => Output::Stdout(Bytes::from(buf)),
                STDERR => Output::Stderr(Bytes::from(buf)),
                EXIT => {
                    let text = String::from_utf8_lossy(&buf);
                    return Some(match text.trim().parse::<i32>() {
                        Ok(code) if code >= 0 => ExitStatus::Exited(code),
                        _ => ExitStatus::Failed(format!(
                            "the process ended without an exit code ({})",
                            text.trim()
                        )),
                    });
                }
                _ => continue,
            };
            if out.send(msg).await.is_err() {
                return None;
            }
        }
    };
    let input = async {
        while let Some(i) = input.next().await {
            match i {
                Input::Stdin(b) => {
                    if wr.write_all(&b).await.is_err() {
                        // The process's stdin is gone; its end comes on the output side.
                        continue;
                    }
                }
                Input::StdinEnd => {
                    if close_stdin {
                        let _ = wr.shutdown().await;
                    }
                }
                Input::Resize { width, height } => {
                    if width == 0 || height == 0 {
                        continue;
                    }
                    let e = engine.clone();
                    let t = target.clone();
                    let _ = tokio::task::spawn_blocking(move || match t {
                        Target::Exec(id) => e.exec_resize(&id, height, width),
                        Target::Container(id) => e.resize(&id, height, width),
                    })
                    .await;
                }
            }
        }
        // The client is gone.
    };
    tokio::select! {
        st = output => st,
        _ = input => None,
    }
}
