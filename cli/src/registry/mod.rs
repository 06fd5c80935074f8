//! Registry work (pull, login check) runs in the `barge-registry` helper next to `barge`:
//! the HTTP/TLS stack (oci-client, reqwest, rustls, tokio) stays out of this binary, so the
//! commands that never talk to a registry (`run` of a stored image, `ps`, ...) map and touch
//! megabytes less code. The work itself is barge_image's (`pull::pull`, `login::check`), which
//! an in-process front end (the API daemon) calls directly.

pub mod proto;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use proto::{Reply, Request};

/// `BARGE_REGISTRY`, else `barge-registry` next to this binary.
fn helper() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BARGE_REGISTRY") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locate the barge binary")?;
    Ok(exe.with_file_name("barge-registry"))
}

/// Send `req` to a new helper and wait for its reply. A `Failed` reply is returned as an
/// error carrying the helper's message.
pub fn call(req: &Request) -> Result<Reply> {
    let path = helper()?;
    let mut child = Command::new(&path)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the registry helper {}", path.display()))?;
    let body = serde_json::to_vec(req).context("encoding the registry request")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&body)
            .with_context(|| format!("sending the request to {}", path.display()))?;
    }
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_end(&mut out)
            .with_context(|| format!("reading the reply of {}", path.display()))?;
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {}", path.display()))?;
    let reply: Reply = match serde_json::from_slice(&out) {
        Ok(r) => r,
        Err(e) if out.is_empty() => bail!("{} ({status}) gave no reply: {e}", path.display()),
        Err(e) => bail!("{} ({status}) gave a bad reply: {e}", path.display()),
    };
    match reply {
        Reply::Failed { error } => Err(anyhow!(error)),
        other => Ok(other),
    }
}
