//! `logs NODE/POD` (chunked text) and `exec NODE/POD -- CMD` (the connection upgraded to
//! `barge-stream` frames: `[u8 fd][u32 BE len][bytes]`; fd 0 stdin, 1 stdout, 2 stderr,
//! 3 the end with `{"exitCode", "error"}`).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{status_error, Client};

/// `NODE/POD` -> (node, pod).
pub fn split_target(t: &str) -> anyhow::Result<(&str, &str)> {
    match t.split_once('/') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() && !p.contains('/') => Ok((n, p)),
        _ => bail!("{t:?}: expected NODE/POD"),
    }
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base(node: &str, ns: &str, pod: &str, what: &str) -> String {
    format!("/api/v1/nodes/{node}/pods/{ns}/{pod}/{what}")
}

pub async fn logs(
    c: &Client,
    target: &str,
    ns: Option<&str>,
    container: Option<&str>,
    follow: bool,
    tail: Option<u64>,
    timestamps: bool,
) -> anyhow::Result<()> {
    let what = format!("logs {target}");
    let (node, pod) = split_target(target).map_err(|e| anyhow!("{what}: {e}"))?;
    let mut q = vec![
        format!("follow={follow}"),
        format!("timestamps={timestamps}"),
    ];
    if let Some(c) = container {
        q.push(format!("container={}", enc(c)));
    }
    if let Some(t) = tail {
        q.push(format!("tailLines={t}"));
    }
    let path = format!(
        "{}?{}",
        base(node, ns.unwrap_or("default"), pod, "log"),
        q.join("&")
    );
    let resp = c
        .send(Method::GET, &path, None, &[])
        .await
        .map_err(|e| anyhow!("{what}: {e}"))?;
    let code = resp.status();
    let mut body = resp.into_body();
    if !code.is_success() {
        let b = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        bail!("{what}: {}", status_error(code, &b));
    }
    let mut out = std::io::stdout().lock();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow!("{what}: the stream broke: {e}"))?;
        if let Some(d) = frame.data_ref() {
            out.write_all(d).context("write stdout")?;
            out.flush().context("write stdout")?;
        }
    }
    Ok(())
}

fn frame(fd: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(fd);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Raw mode on the local terminal while `-t` runs; restored on drop.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(orig) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode(None);
        }
        RawMode(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                orig,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn exec(
    c: &Client,
    target: &str,
    ns: Option<&str>,
    container: Option<&str>,
    stdin: bool,
    tty: bool,
    cmd: &[String],
) -> anyhow::Result<ExitCode> {
    let what = format!("exec {target}");
    let (node, pod) = split_target(target).map_err(|e| anyhow!("{what}: {e}"))?;
    let mut q: Vec<String> = cmd.iter().map(|a| format!("command={}", enc(a))).collect();
    q.push(format!("stdin={stdin}"));
    q.push(format!("tty={tty}"));
    if let Some(c) = container {
        q.push(format!("container={}", enc(c)));
    }
    let path = format!(
        "{}?{}",
        base(node, ns.unwrap_or("default"), pod, "exec"),
        q.join("&")
    );
    let resp = c
        .send(
            Method::GET,
            &path,
            None,
            &[("connection", "Upgrade"), ("upgrade", "barge-stream")],
        )
        .await
        .map_err(|e| anyhow!("{what}: {e}"))?;
    let code = resp.status();
    if code != StatusCode::SWITCHING_PROTOCOLS {
        let b = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        bail!("{what}: {}", status_error(code, &b));
    }
    let up = hyper::upgrade::on(resp)
        .await
        .map_err(|e| anyhow!("{what}: upgrading the connection: {e}"))?;
    let (mut rd, mut wr) = tokio::io::split(TokioIo::new(up));
    let _raw = (tty && stdin).then(RawMode::enter);
    let pump = stdin.then(|| {
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = input.read(&mut buf).await.unwrap_or_default();
                if wr.write_all(&frame(0, &buf[..n])).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
                if n == 0 {
                    break;
                }
            }
            // Keep the write half open until the end: dropping it would not close stdin
            // more than the empty frame did.
            std::future::pending::<()>().await;
        })
    });
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let result = loop {
        let mut hdr = [0u8; 5];
        if rd.read_exact(&mut hdr).await.is_err() {
            break Err(anyhow!(
                "{what}: the connection closed before the command ended"
            ));
        }
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        let mut data = vec![0u8; len];
        if rd.read_exact(&mut data).await.is_err() {
            break Err(anyhow!("{what}: the connection closed in a frame"));
        }
        match hdr[0] {
            1 => {
                out.write_all(&data).await.context("write stdout")?;
                out.flush().await.context("write stdout")?;
            }
            2 => {
                err.write_all(&data).await.context("write stderr")?;
                err.flush().await.context("write stderr")?;
            }
            3 => {
                let v: serde_json::Value = serde_json::from_slice(&data)
                    .map_err(|e| anyhow!("{what}: bad end frame: {e}"))?;
                let code = v.get("exitCode").and_then(|c| c.as_i64());
                let error = v.get("error").and_then(|e| e.as_str());
                break match (code, error) {
                    (Some(c), _) => Ok(ExitCode::from(c.clamp(0, 255) as u8)),
                    (None, Some(e)) => Err(anyhow!("{what}: {e}")),
                    (None, None) => Err(anyhow!("{what}: ended without an exit code")),
                };
            }
            _ => {}
        }
    };
    if let Some(p) = pump {
        p.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_encoding() {
        assert_eq!(split_target("n1/web").unwrap(), ("n1", "web"));
        assert!(split_target("web").is_err());
        assert!(split_target("a/b/c").is_err());
        assert_eq!(enc("echo hi&x=/"), "echo%20hi%26x%3D%2F");
    }
}
