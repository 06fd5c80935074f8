//! Registry work (pull, login check) runs in the `barge-registry` helper binary
//! (`EngineOptions::registry`): the HTTP/TLS stack (oci-client, reqwest, rustls, tokio) stays
//! out of the front ends' processes, and a multi-threaded daemon never forks in-process for
//! it. The work itself is barge_image's (`pull::pull`, `login::check`).

pub mod proto;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use proto::{PullEvent, Reply, Request};

use crate::error::{Error, ErrorKind, Result};

fn failed(helper: &Path, msg: String) -> Error {
    Error::Registry {
        kind: ErrorKind::Internal,
        msg: format!("registry helper {}: {msg}", helper.display()),
    }
}

/// The wire name of a failure's kind (see [`proto::Reply::Failed`]).
pub fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::NotFound => "not_found",
        ErrorKind::BadParameter => "bad_parameter",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Unauthorized => "unauthorized",
        _ => "internal",
    }
}

fn kind_of(name: Option<&str>) -> ErrorKind {
    match name {
        Some("not_found") => ErrorKind::NotFound,
        Some("bad_parameter") => ErrorKind::BadParameter,
        Some("unavailable") => ErrorKind::Unavailable,
        Some("unauthorized") => ErrorKind::Unauthorized,
        _ => ErrorKind::Internal,
    }
}

/// Send `req` to a new `helper` process and wait for its reply; progress lines go to
/// `progress`. A `Failed` reply is [`Error::Registry`] with the helper's message and kind.
pub fn call(helper: &Path, req: &Request, progress: &mut dyn FnMut(PullEvent)) -> Result<Reply> {
    let io = |what: &'static str| {
        move |e: std::io::Error| Error::Io {
            what,
            path: helper.to_path_buf(),
            source: e,
        }
    };
    let mut child = Command::new(helper)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("starting the registry helper"))?;
    let body = serde_json::to_vec(req)
        .map_err(|e| failed(helper, format!("encoding the request: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&body)
            .map_err(io("send the request to the registry helper"))?;
    }
    let mut reply = None;
    let mut bad = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(io("read the reply of the registry helper"))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Progress(ev)) => progress(ev),
                Ok(r) => reply = Some(r),
                Err(e) => bad = Some(e.to_string()),
            }
        }
    }
    let status = child.wait().map_err(io("wait for the registry helper"))?;
    match reply {
        Some(Reply::Failed { error, kind }) => Err(Error::Registry {
            kind: kind_of(kind.as_deref()),
            msg: error,
        }),
        Some(r) => Ok(r),
        None => match bad {
            Some(e) => Err(failed(helper, format!("({status}) gave a bad reply: {e}"))),
            None => Err(failed(helper, format!("({status}) gave no reply"))),
        },
    }
}
