//! What the networking tests observe on the host: free ports, HTTP answers through published
//! ports, firewall rules, IPAM reservations and namespace pins.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::engine::{wait_until, BargeEnv};

/// A busybox httpd serving `$BODY` on port 80 of the container.
pub const HTTPD: &str =
    "mkdir -p /www && echo \"$BODY\" > /www/index.html && exec httpd -f -p 80 -h /www";

/// A TCP port nobody listens on now (on any address).
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

/// GET / from 127.0.0.1:port; the body (None if it does not answer).
pub fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Wait until GET / on the port answers; its body.
pub fn wait_http(port: u16) -> String {
    let mut body = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            body = http_get(port);
            body.is_some()
        }),
        "nothing answers on 127.0.0.1:{port}"
    );
    body.unwrap_or_default()
}

/// iptables and ip6tables rules (all tables) mentioning `needle`.
pub fn rules_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for bin in ["iptables-save", "ip6tables-save"] {
        let o = std::process::Command::new(bin).output().expect(bin);
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(needle))
                .map(String::from),
        );
    }
    out
}

/// host-local's reservations on a network: files named by the address.
pub fn ipam_reservations(network: &str) -> BTreeSet<String> {
    fs::read_dir(Path::new("/var/lib/cni/networks").join(network))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Mounts of network namespace pins under the store's run root.
pub fn pins(b: &BargeEnv) -> Vec<String> {
    let want = b.runroot().join("netns").display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.contains(" nsfs ") && l.contains(&want))
        .map(String::from)
        .collect()
}
