//! A TCP connection to the loopback of another network namespace, made without forking: a
//! short-lived thread of ours enters the namespace (setns only changes the calling thread),
//! creates and connects the socket, and ends; the socket stays in that namespace.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

/// How long a connection to the forwarded port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connect to `127.0.0.1:port` (then `[::1]:port`) inside the network namespace pinned at
/// `netns`.
pub(crate) async fn connect(netns: &Path, port: u16) -> Result<TcpStream, String> {
    let netns: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let _ = tx.send(connect_here(&netns, port));
        });
    if let Err(e) = spawned {
        return Err(format!("start a thread to connect to port {port}: {e}"));
    }
    rx.await
        .unwrap_or_else(|_| Err(format!("connect to port {port}: the thread ended")))
}

/// Runs on its own thread, which it moves into the namespace: the thread ends right after.
fn connect_here(netns: &Path, port: u16) -> Result<TcpStream, String> {
    let f = std::fs::File::open(netns)
        .map_err(|e| format!("open network namespace {}: {e}", netns.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("enter network namespace {}: {e}", netns.display()))?;
    let mut last = String::new();
    for addr in [
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
    ] {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {addr} in {}: {e}", netns.display()),
        }
    }
    Err(last)
}
