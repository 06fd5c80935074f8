//! What 10 000 edges on one hub need from the kernel: one file per session (the open-files
//! limit is raised at startup as far as the kernel allows this process: root up to
//! `/proc/sys/fs/nr_open`, others up to their hard limit) and an accept queue deep enough
//! for a reconnect storm (the kernel caps it at `net.core.somaxconn`).

use std::net::SocketAddr;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tokio::net::{TcpListener, TcpSocket};

/// The edges' listen backlog.
pub const EDGE_BACKLOG: u32 = 4096;

/// Raise RLIMIT_NOFILE as far as allowed; the soft limit in force afterwards.
pub fn raise_nofile() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard)
        .max(hard);
    // Root (CAP_SYS_RESOURCE) may raise its hard limit up to nr_open.
    if setrlimit(Resource::RLIMIT_NOFILE, ceiling, ceiling).is_ok() {
        return ceiling;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// A TCP listener on `addr` with `backlog` pending connections (address reuse on).
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_raised_and_listener_accepts() {
        let before = getrlimit(Resource::RLIMIT_NOFILE).unwrap().0;
        let after = raise_nofile();
        assert!(after >= before, "{after} < {before}");
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, after);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = listen("127.0.0.1:0".parse().unwrap(), EDGE_BACKLOG).unwrap();
            let addr = l.local_addr().unwrap();
            let c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (s, peer) = l.accept().await.unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            drop(s);
        });
    }
}
