//! Published ports: docker's `-p`/`--publish`, `-P`/`--publish-all` and `--expose`.
//!
//! [`PortSpec::parse`] turns one `-p` value into port specs (a range gives several),
//! [`resolve`] turns the specs of a container into concrete [`PortBinding`]s when it starts,
//! binding every host port (random ones by binding port 0) and returning the sockets
//! ([`HeldPorts`]) that the container's shim keeps while it lives, as docker-proxy does; the
//! remaining functions render the bindings for the CNI portmap plugin, `docker ps` and
//! `docker inspect`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The protocols a port can be published for.
pub const PROTOCOLS: [&str; 3] = ["tcp", "udp", "sctp"];

/// One requested publication of a container port (one `-p` value may give several).
///
/// A host port range with a single container port (`-p 8000-8010:80`) is kept as one spec
/// with `host_port` = 8000 and `host_port_end` = 8010: the first free port of the range is
/// picked when the container starts. Matching ranges (`-p 8000-8002:80-82`) give one spec
/// per port, each with `host_port_end` = 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address to publish on (canonical text form); "" means all addresses.
    pub host_ip: String,
    /// Host port; 0 means pick a free one when the container starts.
    pub host_port: u16,
    /// Last port of a host port range to pick from (see the type's doc); 0 when not a range.
    #[serde(default)]
    pub host_port_end: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
}

impl PortSpec {
    /// Parse one `-p`/`--publish` value, in any of docker's forms: `80`, `8080:80`,
    /// `127.0.0.1:8080:80`, `127.0.0.1::80`, `[::1]:8080:80`, `8000-8002:80-82`,
    /// `8000-8010:80`, `80-82`, each optionally followed by `/tcp`, `/udp` or `/sctp`.
    pub fn parse(s: &str) -> Result<Vec<PortSpec>> {
        let bad = |msg: String| Error::Invalid(format!("-p {s:?}: {msg}"));
        let (rest, proto) = match s.rsplit_once('/') {
            Some((rest, proto)) => (rest, parse_proto(proto).map_err(bad)?),
            None => (s, "tcp".to_string()),
        };
        let (ip, host, container) = split_host_parts(rest).map_err(bad)?;
        let host_ip = match ip {
            None | Some("") => String::new(),
            Some(ip) => parse_ip(ip).map_err(bad)?.to_string(),
        };
        if container.is_empty() {
            return Err(bad("missing container port".to_string()));
        }
        let (cs, ce) = parse_range(container, "container port").map_err(bad)?;
        let host = if host.is_empty() {
            None
        } else {
            Some(parse_range(host, "host port").map_err(bad)?)
        };
        let spec = |host_port: u16, host_port_end: u16, container_port: u16| PortSpec {
            host_ip: host_ip.clone(),
            host_port,
            host_port_end,
            container_port,
            proto: proto.clone(),
        };
        match host {
            None => Ok((cs..=ce).map(|cp| spec(0, 0, cp)).collect()),
            Some((hs, he)) if he - hs == ce - cs => {
                Ok((hs..=he).zip(cs..=ce).map(|(hp, cp)| spec(hp, 0, cp)).collect())
            }
            Some((hs, he)) if cs == ce => Ok(vec![spec(hs, he, cs)]),
            Some((hs, he)) => Err(bad(format!(
                "host port range {hs}-{he} and container port range {cs}-{ce} have different lengths"
            ))),
        }
    }
}

impl fmt::Display for PortSpec {
    /// The spec in `-p` syntax (`127.0.0.1:8080:80/tcp`, `[::1]::80/udp`, `80/tcp`);
    /// parsing it gives the spec back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.host_ip.is_empty() {
            if self.host_ip.contains(':') {
                write!(f, "[{}]:", self.host_ip)?;
            } else {
                write!(f, "{}:", self.host_ip)?;
            }
        }
        if self.host_port != 0 {
            write!(f, "{}", self.host_port)?;
            if self.host_port_end != 0 {
                write!(f, "-{}", self.host_port_end)?;
            }
        }
        if !self.host_ip.is_empty() || self.host_port != 0 {
            write!(f, ":")?;
        }
        write!(f, "{}/{}", self.container_port, self.proto)
    }
}

/// Split `[ip:]host:container` (the protocol already removed) into its parts, docker's way:
/// the container port is after the last colon, the host port before it, and anything before
/// that is the address (`::1:8080:80` works, `[::1]:8080:80` is clearer).
fn split_host_parts(rest: &str) -> std::result::Result<(Option<&str>, &str, &str), String> {
    if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or_else(|| "missing \"]\" after the IPv6 address".to_string())?;
        let (host, container) = tail
            .strip_prefix(':')
            .and_then(|t| t.split_once(':'))
            .ok_or_else(|| "expected [IP]:HOSTPORT:CONTAINERPORT".to_string())?;
        if container.contains(':') {
            return Err("expected [IP]:HOSTPORT:CONTAINERPORT".to_string());
        }
        return Ok((Some(ip), host, container));
    }
    let mut parts = rest.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    Ok((parts.next(), host, container))
}

fn parse_ip(ip: &str) -> std::result::Result<IpAddr, String> {
    ip.parse::<IpAddr>()
        .map_err(|_| format!("host IP {ip:?} is not an IP address"))
}

fn parse_proto(proto: &str) -> std::result::Result<String, String> {
    let p = proto.to_ascii_lowercase();
    if PROTOCOLS.contains(&p.as_str()) {
        Ok(p)
    } else {
        Err(format!("protocol {proto:?} is not tcp, udp or sctp"))
    }
}

/// One port, 1..=65535; `what` names it in errors ("host port", "container port").
fn parse_port(t: &str, what: &str) -> std::result::Result<u16, String> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {t:?} is not a number"));
    }
    match t.parse::<u16>() {
        Ok(0) if what == "host port" => Err(format!(
            "{what} 0 is not valid (leave the host port out to pick a free one)"
        )),
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{what} {t} is out of range (1-65535)")),
    }
}

/// `N` or `N-M` (M >= N).
fn parse_range(t: &str, what: &str) -> std::result::Result<(u16, u16), String> {
    let (a, b) = t.split_once('-').unwrap_or((t, t));
    let (a, b) = (parse_port(a, what)?, parse_port(b, what)?);
    if b < a {
        return Err(format!("{what} range {t} ends before it starts"));
    }
    Ok((a, b))
}

/// Parse every entry of a list of exposed ports (see [`parse_expose`]), in order.
pub fn parse_exposed(list: &[String]) -> Result<Vec<(u16, String)>> {
    let mut out = Vec::new();
    for e in list {
        out.extend(parse_expose(e)?);
    }
    Ok(out)
}

/// Parse an `--expose` value (`80`, `80/udp`, `8000-8002`, `8000-8002/tcp`) or an image
/// config `ExposedPorts` key (`80/tcp`) into (port, protocol) pairs.
pub fn parse_expose(s: &str) -> Result<Vec<(u16, String)>> {
    let bad = |msg: String| Error::Invalid(format!("--expose {s:?}: {msg}"));
    let (ports, proto) = match s.rsplit_once('/') {
        Some((ports, proto)) => (ports, parse_proto(proto).map_err(bad)?),
        None => (s, "tcp".to_string()),
    };
    let (a, b) = parse_range(ports, "port").map_err(bad)?;
    Ok((a..=b).map(|p| (p, proto.clone())).collect())
}

/// A concrete publication: host address and port forwarded to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address (canonical text form); "" means all addresses.
    pub host_ip: String,
    /// Host port, never 0.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
}

/// One binding being resolved, with the flag it came from (for error messages).
struct Want {
    spec: PortSpec,
    origin: String,
}

/// The host sockets that hold a container's published ports while it runs (docker's
/// docker-proxy holds them the same way): TCP listeners and bound UDP sockets, on the
/// binding's host address (0.0.0.0 for all addresses). Nothing reads them; the CNI portmap
/// plugin's DNAT sends the traffic to the container before it could reach them. sctp ports
/// are not held (the kernel may not have sctp).
#[derive(Debug, Default)]
pub struct HeldPorts {
    pub sockets: Vec<OwnedFd>,
}

/// Sockets bound while resolving: `keep` become the [`HeldPorts`], `probes` only keep two
/// random picks from returning the same port and are closed at the end.
#[derive(Default)]
struct Held {
    keep: Vec<OwnedFd>,
    probes: Vec<OwnedFd>,
}

/// The address a binding's socket binds: all IPv4 addresses for "".
fn socket_addr(ip: &str, port: u16) -> std::io::Result<SocketAddr> {
    let addr: IpAddr = if ip.is_empty() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        ip.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP address")
        })?
    };
    Ok(SocketAddr::new(addr, port))
}

/// The address as docker shows it in "Bind for ... failed": `0.0.0.0:8080`, `[::1]:8080`.
fn shown_addr(ip: &str, port: u16) -> String {
    match socket_addr(ip, port) {
        Ok(sa) => sa.to_string(),
        Err(_) => format!("{ip}:{port}"),
    }
}

/// A bind that failed: the address as docker shows it, and why.
struct BindError {
    addr: String,
    err: std::io::Error,
}

impl Held {
    /// Bind `ip` and `port` (0: any) for `proto`: a TCP listener, or a UDP socket; sctp is
    /// probed with TCP. All addresses ("") are 0.0.0.0 and also [::] (IPv6 only, as
    /// docker-proxy holds them; skipped on a host without IPv6), on the same port. The bound
    /// port and its sockets.
    fn bind(
        ip: &str,
        port: u16,
        proto: &str,
    ) -> std::result::Result<(u16, Vec<OwnedFd>), BindError> {
        let fail = |port: u16, err| BindError {
            addr: shown_addr(ip, port),
            err,
        };
        let sa = socket_addr(ip, port).map_err(|e| fail(port, e))?;
        let (port, fd): (u16, OwnedFd) = if proto == "udp" {
            let s = UdpSocket::bind(sa).map_err(|e| fail(port, e))?;
            (s.local_addr().map_err(|e| fail(port, e))?.port(), s.into())
        } else {
            let l = TcpListener::bind(sa).map_err(|e| fail(port, e))?;
            (l.local_addr().map_err(|e| fail(port, e))?.port(), l.into())
        };
        let mut fds = vec![fd];
        if ip.is_empty() && proto != "sctp" {
            match bind_v6_any(port, proto) {
                Ok(Some(fd)) => fds.push(fd),
                Ok(None) => {}
                Err(err) => {
                    return Err(BindError {
                        addr: format!("[::]:{port}"),
                        err,
                    })
                }
            }
        }
        Ok((port, fds))
    }

    /// Keep the sockets of a chosen binding (sctp's TCP probe is only a probe).
    fn chosen(&mut self, fds: Vec<OwnedFd>, proto: &str) {
        if proto == "sctp" {
            self.probes.extend(fds);
        } else {
            self.keep.extend(fds);
        }
    }
}

/// Bind `[::]:port` with IPV6_V6ONLY (so it does not overlap 0.0.0.0): a TCP listener or a
/// UDP socket; None when the host has no IPv6.
fn bind_v6_any(port: u16, proto: &str) -> std::io::Result<Option<OwnedFd>> {
    use nix::errno::Errno;
    use nix::sys::socket::{
        self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn6,
    };
    let ty = if proto == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = match socket::socket(AddressFamily::Inet6, ty, SockFlag::SOCK_CLOEXEC, None) {
        Ok(fd) => fd,
        Err(Errno::EAFNOSUPPORT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    if ty == SockType::Stream {
        // As std's TcpListener (and servers) do: TIME_WAIT connections don't block it.
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(
        std::net::Ipv6Addr::UNSPECIFIED,
        port,
        0,
        0,
    ));
    match socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) => {}
        Err(Errno::EADDRNOTAVAIL | Errno::EAFNOSUPPORT) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if ty == SockType::Stream {
        socket::listen(&fd, Backlog::new(128)?)?;
    }
    Ok(Some(fd))
}

/// Whether two host addresses (canonical text, "" = all) can receive the same packets:
/// equal, one of them "", or one the unspecified address of the other's family.
fn ips_overlap(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() || a == b {
        return true;
    }
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.is_ipv4() == y.is_ipv4() && (x.is_unspecified() || y.is_unspecified()),
        _ => false,
    }
}

/// The first binding of `chosen` that the binding would clash with.
fn clash<'a>(
    chosen: &'a [(PortBinding, String)],
    ip: &str,
    port: u16,
    proto: &str,
) -> Option<&'a (PortBinding, String)> {
    chosen
        .iter()
        .find(|(b, _)| b.host_port == port && b.proto == proto && ips_overlap(&b.host_ip, ip))
}

fn describe_ip(ip: &str) -> &str {
    if ip.is_empty() {
        "all addresses"
    } else {
        ip
    }
}

/// Check a spec that may come from stored configuration rather than from [`PortSpec::parse`].
fn check_spec(s: &PortSpec, origin: &str) -> Result<()> {
    let bad = |msg: &str| Err(Error::Invalid(format!("{origin}: {msg}")));
    if !PROTOCOLS.contains(&s.proto.as_str()) {
        return bad("protocol is not tcp, udp or sctp");
    }
    if s.container_port == 0 {
        return bad("container port 0 is not valid");
    }
    if s.host_port_end != 0 && (s.host_port == 0 || s.host_port_end < s.host_port) {
        return bad("bad host port range");
    }
    if !s.host_ip.is_empty() && s.host_ip.parse::<IpAddr>().is_err() {
        return bad("host IP is not an IP address");
    }
    Ok(())
}

/// Turn the specs of a container into concrete bindings, in order: first the specs, then
/// (with `publish_all`, docker's `-P`) every exposed port not published by a spec, on a
/// random host port on all addresses; with the sockets that hold them ([`HeldPorts`]).
///
/// Every host port is bound here (TCP, or UDP for udp, on the host address, 0.0.0.0 for
/// all addresses): a fixed port another process holds is refused with docker's
/// "Bind for 0.0.0.0:8080 failed: port is already allocated" ([`Error::PortAllocated`]); a
/// host port 0 becomes the port the kernel picks for a bind to port 0, and a host port range
/// its first port that binds. The sockets stay bound for as long as the caller keeps the
/// returned [`HeldPorts`], so nothing can take a port between its choice and its use. Two
/// bindings with the same host port and protocol on overlapping addresses are an error.
pub fn resolve(
    specs: &[PortSpec],
    publish_all: bool,
    exposed: &[(u16, String)],
) -> Result<(Vec<PortBinding>, HeldPorts)> {
    let mut wants: Vec<Want> = Vec::new();
    for s in specs {
        let origin = format!("-p {s}");
        check_spec(s, &origin)?;
        wants.push(Want {
            spec: s.clone(),
            origin,
        });
    }
    if publish_all {
        let mut seen: BTreeSet<(u16, &str)> = specs
            .iter()
            .map(|s| (s.container_port, s.proto.as_str()))
            .collect();
        for (cp, proto) in exposed {
            if !seen.insert((*cp, proto.as_str())) {
                continue;
            }
            let spec = PortSpec {
                host_ip: String::new(),
                host_port: 0,
                host_port_end: 0,
                container_port: *cp,
                proto: proto.clone(),
            };
            let origin = format!("-P (exposed port {cp}/{proto})");
            check_spec(&spec, &origin)?;
            wants.push(Want { spec, origin });
        }
    }

    let mut chosen: Vec<(PortBinding, String)> = Vec::with_capacity(wants.len());
    let mut slots: Vec<Option<PortBinding>> = vec![None; wants.len()];
    let binding = |s: &PortSpec, host_port: u16| PortBinding {
        host_ip: s.host_ip.clone(),
        host_port,
        container_port: s.container_port,
        proto: s.proto.clone(),
    };

    // Fixed host ports first, so random picks can avoid them.
    let mut held = Held::default();
    for (i, w) in wants.iter().enumerate() {
        let s = &w.spec;
        if s.host_port == 0 || s.host_port_end != 0 {
            continue;
        }
        if let Some((_, other)) = clash(&chosen, &s.host_ip, s.host_port, &s.proto) {
            return Err(Error::Invalid(format!(
                "{}: host port {}/{} on {} is already published by {other}",
                w.origin,
                s.host_port,
                s.proto,
                describe_ip(&s.host_ip)
            )));
        }
        if s.proto != "sctp" {
            match Held::bind(&s.host_ip, s.host_port, &s.proto) {
                Ok((_, fds)) => held.chosen(fds, &s.proto),
                Err(e) if e.err.kind() == std::io::ErrorKind::AddrInUse => {
                    return Err(Error::PortAllocated {
                        addr: e.addr,
                        proto: s.proto.clone(),
                    })
                }
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "{}: Bind for {} failed: {}",
                        w.origin, e.addr, e.err
                    )))
                }
            }
        }
        let b = binding(s, s.host_port);
        slots[i] = Some(b.clone());
        chosen.push((b, w.origin.clone()));
    }

    for (i, w) in wants.iter().enumerate() {
        let s = &w.spec;
        let port = if s.host_port_end != 0 {
            pick_in_range(&mut held, &chosen, w)?
        } else if s.host_port == 0 {
            pick_random(&mut held, &chosen, w)?
        } else {
            continue;
        };
        let b = binding(s, port);
        slots[i] = Some(b.clone());
        chosen.push((b, w.origin.clone()));
    }
    Ok((
        slots.into_iter().flatten().collect(),
        HeldPorts { sockets: held.keep },
    ))
}

/// Hold the host ports of bindings already chosen (e.g. those recorded in a running
/// container's attachments, for a shim that takes over a container whose shim was lost):
/// the same sockets [`resolve`] returns, or [`Error::PortAllocated`] for a port someone
/// took meanwhile.
pub fn hold(bindings: &[PortBinding]) -> Result<HeldPorts> {
    let mut held = Held::default();
    for b in bindings.iter().filter(|b| b.proto != "sctp") {
        match Held::bind(&b.host_ip, b.host_port, &b.proto) {
            Ok((_, fds)) => held.chosen(fds, &b.proto),
            Err(e) if e.err.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(Error::PortAllocated {
                    addr: e.addr,
                    proto: b.proto.clone(),
                })
            }
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "Bind for {} failed: {}",
                    e.addr, e.err
                )))
            }
        }
    }
    Ok(HeldPorts { sockets: held.keep })
}

/// The first port of the spec's host range that no binding uses and that binds.
fn pick_in_range(held: &mut Held, chosen: &[(PortBinding, String)], w: &Want) -> Result<u16> {
    let s = &w.spec;
    let mut last_err = None;
    for port in s.host_port..=s.host_port_end {
        if clash(chosen, &s.host_ip, port, &s.proto).is_some() {
            continue;
        }
        match Held::bind(&s.host_ip, port, &s.proto) {
            Ok((_, fds)) => {
                held.chosen(fds, &s.proto);
                return Ok(port);
            }
            Err(e) => last_err = Some(e.err),
        }
    }
    Err(Error::Invalid(format!(
        "{}: no free host port in {}-{} on {}{}",
        w.origin,
        s.host_port,
        s.host_port_end,
        describe_ip(&s.host_ip),
        last_err.map(|e| format!(" ({e})")).unwrap_or_default()
    )))
}

/// A free port chosen by the kernel that no binding uses.
fn pick_random(held: &mut Held, chosen: &[(PortBinding, String)], w: &Want) -> Result<u16> {
    let s = &w.spec;
    for _ in 0..32 {
        let (port, fds) = match Held::bind(&s.host_ip, 0, &s.proto) {
            Ok(b) => b,
            // The kernel's IPv4 pick is taken on [::]: try another.
            Err(e) if e.err.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{}: cannot find a free host port on {}: {}",
                    w.origin,
                    describe_ip(&s.host_ip),
                    e.err
                )))
            }
        };
        if clash(chosen, &s.host_ip, port, &s.proto).is_none() {
            held.chosen(fds, &s.proto);
            return Ok(port);
        }
        // Kept until the end, so the next try gets another port.
        held.probes.extend(fds);
    }
    Err(Error::Invalid(format!(
        "{}: cannot find a free host port on {}",
        w.origin,
        describe_ip(&s.host_ip)
    )))
}

/// The CNI portmap plugin's `runtimeConfig.portMappings` array:
/// `[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"}]`
/// (`hostIP` left out for all addresses).
pub fn portmap_entries(b: &[PortBinding]) -> Value {
    Value::Array(
        b.iter()
            .map(|b| {
                let mut m = Map::new();
                m.insert("hostPort".into(), b.host_port.into());
                m.insert("containerPort".into(), b.container_port.into());
                m.insert("protocol".into(), b.proto.clone().into());
                if !b.host_ip.is_empty() {
                    m.insert("hostIP".into(), b.host_ip.clone().into());
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// The host address as docker shows it: 0.0.0.0 for all addresses.
fn shown_ip(ip: &str) -> &str {
    if ip.is_empty() {
        "0.0.0.0"
    } else {
        ip
    }
}

/// A run of consecutive ports shown as one item of the PORTS column.
struct Group<'a> {
    /// Host address as shown; None for exposed but unpublished ports.
    ip: Option<&'a str>,
    proto: &'a str,
    first_cp: u16,
    last_cp: u16,
    first_hp: u16,
    last_hp: u16,
}

fn span(first: u16, last: u16) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// `docker ps`'s PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:9000->9000/udp, 443/tcp`,
/// exposed but unpublished ports as `443/tcp`, sorted by container port and protocol.
/// Consecutive container ports published on consecutive host ports of the same address
/// (or all unpublished) are collapsed: `0.0.0.0:8000-8002->80-82/tcp`, `80-82/tcp`.
pub fn format_ps(b: &[PortBinding], exposed: &[(u16, String)]) -> String {
    // (container port, proto, shown host ip, host port)
    let mut items: Vec<(u16, &str, Option<&str>, u16)> = b
        .iter()
        .map(|b| {
            (
                b.container_port,
                b.proto.as_str(),
                Some(shown_ip(&b.host_ip)),
                b.host_port,
            )
        })
        .collect();
    let published: BTreeSet<(u16, &str)> = b
        .iter()
        .map(|b| (b.container_port, b.proto.as_str()))
        .collect();
    let unpublished: BTreeSet<(u16, &str)> = exposed
        .iter()
        .map(|(p, proto)| (*p, proto.as_str()))
        .filter(|k| !published.contains(k))
        .collect();
    items.extend(
        unpublished
            .into_iter()
            .map(|(p, proto)| (p, proto, None, 0)),
    );
    items.sort();
    items.dedup();

    let mut groups: Vec<Group> = Vec::new();
    for (cp, proto, ip, hp) in items {
        let ext = groups.iter_mut().rev().find(|g| {
            g.ip == ip
                && g.proto == proto
                && u32::from(g.last_cp) + 1 == u32::from(cp)
                && (ip.is_none() || u32::from(g.last_hp) + 1 == u32::from(hp))
        });
        match ext {
            Some(g) => {
                g.last_cp = cp;
                g.last_hp = hp;
            }
            None => groups.push(Group {
                ip,
                proto,
                first_cp: cp,
                last_cp: cp,
                first_hp: hp,
                last_hp: hp,
            }),
        }
    }
    groups
        .iter()
        .map(|g| {
            let cps = span(g.first_cp, g.last_cp);
            match g.ip {
                None => format!("{cps}/{}", g.proto),
                Some(ip) => {
                    let hps = span(g.first_hp, g.last_hp);
                    if ip.contains(':') {
                        format!("[{ip}]:{hps}->{cps}/{}", g.proto)
                    } else {
                        format!("{ip}:{hps}->{cps}/{}", g.proto)
                    }
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `docker inspect`'s `NetworkSettings.Ports`:
/// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/tcp": null}`
/// (exposed but unpublished ports map to null).
pub fn docker_ports_map(b: &[PortBinding], exposed: &[(u16, String)]) -> Value {
    let mut m = Map::new();
    for b in b {
        let entry = serde_json::json!({
            "HostIp": shown_ip(&b.host_ip),
            "HostPort": b.host_port.to_string(),
        });
        let slot = m
            .entry(format!("{}/{}", b.container_port, b.proto))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = slot {
            list.push(entry);
        }
    }
    for (p, proto) in exposed {
        m.entry(format!("{p}/{proto}")).or_insert(Value::Null);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ip: &str, hp: u16, end: u16, cp: u16, proto: &str) -> PortSpec {
        PortSpec {
            host_ip: ip.into(),
            host_port: hp,
            host_port_end: end,
            container_port: cp,
            proto: proto.into(),
        }
    }

    fn bind(ip: &str, hp: u16, cp: u16, proto: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: hp,
            container_port: cp,
            proto: proto.into(),
        }
    }

    fn err(s: &str) -> String {
        match PortSpec::parse(s) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{s}: expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn parse_simple_forms() {
        assert_eq!(PortSpec::parse("80").unwrap(), [spec("", 0, 0, 80, "tcp")]);
        assert_eq!(
            PortSpec::parse("8080:80").unwrap(),
            [spec("", 8080, 0, 80, "tcp")]
        );
        assert_eq!(
            PortSpec::parse("127.0.0.1:8080:80").unwrap(),
            [spec("127.0.0.1", 8080, 0, 80, "tcp")]
        );
        assert_eq!(
            PortSpec::parse("127.0.0.1::80/udp").unwrap(),
            [spec("127.0.0.1", 0, 0, 80, "udp")]
        );
        assert_eq!(
            PortSpec::parse("53:53/UDP").unwrap(),
            [spec("", 53, 0, 53, "udp")]
        );
        assert_eq!(
            PortSpec::parse("9:9/sctp").unwrap(),
            [spec("", 9, 0, 9, "sctp")]
        );
    }

    #[test]
    fn parse_ipv6() {
        assert_eq!(
            PortSpec::parse("[::1]:8080:80").unwrap(),
            [spec("::1", 8080, 0, 80, "tcp")]
        );
        assert_eq!(
            PortSpec::parse("[fd00::0001]::80/udp").unwrap(),
            [spec("fd00::1", 0, 0, 80, "udp")]
        );
        // docker's unbracketed form: the last two fields are the ports
        assert_eq!(
            PortSpec::parse("::1:8080:80").unwrap(),
            [spec("::1", 8080, 0, 80, "tcp")]
        );
    }

    #[test]
    fn parse_ranges() {
        assert_eq!(
            PortSpec::parse("8000-8002:80-82").unwrap(),
            [
                spec("", 8000, 0, 80, "tcp"),
                spec("", 8001, 0, 81, "tcp"),
                spec("", 8002, 0, 82, "tcp"),
            ]
        );
        assert_eq!(
            PortSpec::parse("127.0.0.1:8000-8001:80-81/udp").unwrap(),
            [
                spec("127.0.0.1", 8000, 0, 80, "udp"),
                spec("127.0.0.1", 8001, 0, 81, "udp"),
            ]
        );
        assert_eq!(
            PortSpec::parse("80-82").unwrap(),
            [
                spec("", 0, 0, 80, "tcp"),
                spec("", 0, 0, 81, "tcp"),
                spec("", 0, 0, 82, "tcp"),
            ]
        );
        assert_eq!(
            PortSpec::parse("8000-8010:80").unwrap(),
            [spec("", 8000, 8010, 80, "tcp")]
        );
        assert_eq!(
            PortSpec::parse("8000-8000:80").unwrap(),
            [spec("", 8000, 0, 80, "tcp")]
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            err("80:x"),
            r#"-p "80:x": container port "x" is not a number"#
        );
        assert!(err("x:80").contains(r#"host port "x" is not a number"#));
        assert!(err("0:80").contains("host port 0 is not valid"));
        assert!(err("8080:0").contains("container port 0 is out of range"));
        assert!(err("70000:80").contains("out of range"));
        assert!(err("8080:").contains("missing container port"));
        assert!(err("").contains("missing container port"));
        assert!(err("80/icmp").contains(r#"protocol "icmp" is not tcp, udp or sctp"#));
        assert!(err("1.2.3:80:80").contains(r#"host IP "1.2.3" is not an IP address"#));
        assert!(err("localhost:80:80").contains("not an IP address"));
        assert!(err("8000-8001:80-82").contains("different lengths"));
        assert!(err("90-80").contains("ends before it starts"));
        assert!(err("[::1:80:80").contains("missing \"]\""));
        assert!(err("[::1]:80").contains("expected [IP]:HOSTPORT:CONTAINERPORT"));
        assert!(err("+80").contains("not a number"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "80/tcp",
            "8080:80/tcp",
            "127.0.0.1:8080:80/udp",
            "127.0.0.1::80/tcp",
            "[::1]:8080:80/sctp",
            "[::1]::80/tcp",
            "8000-8010:80/tcp",
        ] {
            let p = PortSpec::parse(s).unwrap();
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].to_string(), s);
            assert_eq!(PortSpec::parse(&p[0].to_string()).unwrap(), p);
        }
    }

    #[test]
    fn spec_deserializes_without_range_end() {
        let s: PortSpec = serde_json::from_str(
            r#"{"host_ip":"","host_port":80,"container_port":80,"proto":"tcp"}"#,
        )
        .unwrap();
        assert_eq!(s, spec("", 80, 0, 80, "tcp"));
    }

    #[test]
    fn expose_forms() {
        assert_eq!(parse_expose("80").unwrap(), [(80, "tcp".to_string())]);
        assert_eq!(parse_expose("80/udp").unwrap(), [(80, "udp".to_string())]);
        assert_eq!(parse_expose("80/tcp").unwrap(), [(80, "tcp".to_string())]);
        assert_eq!(
            parse_expose("8000-8002").unwrap(),
            [
                (8000, "tcp".to_string()),
                (8001, "tcp".to_string()),
                (8002, "tcp".to_string())
            ]
        );
        for bad in ["x", "80/foo", "0", "80:80", "9-8", ""] {
            match parse_expose(bad) {
                Err(Error::Invalid(m)) => assert!(m.starts_with("--expose"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn resolve_fixed_and_random() {
        let specs = [
            spec("127.0.0.1", 18080, 0, 80, "tcp"),
            spec("127.0.0.1", 0, 0, 81, "tcp"),
            spec("", 0, 0, 53, "udp"),
        ];
        let (b, held) = resolve(&specs, false, &[]).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], bind("127.0.0.1", 18080, 80, "tcp"));
        assert_eq!((b[1].container_port, b[1].proto.as_str()), (81, "tcp"));
        assert_ne!(b[1].host_port, 0);
        assert_eq!(b[1].host_ip, "127.0.0.1");
        assert_ne!(b[2].host_port, 0);
        assert_eq!(b[2].proto, "udp");
        // the ports stay held while the HeldPorts live (all addresses: IPv4 and IPv6), and
        // are free after
        assert_eq!(held.sockets.len(), 4);
        assert_eq!(
            bind_v6_any(b[2].host_port, "udp").unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        for p in [18080, b[1].host_port] {
            let e = TcpListener::bind(("127.0.0.1", p)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{p}");
        }
        let e = UdpSocket::bind(("0.0.0.0", b[2].host_port)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(held);
        TcpListener::bind(("127.0.0.1", 18080)).unwrap();
        TcpListener::bind(("127.0.0.1", b[1].host_port)).unwrap();
        UdpSocket::bind(("0.0.0.0", b[2].host_port)).unwrap();
    }

    #[test]
    fn hold_binds_recorded_bindings_again() {
        let (b, held) = resolve(&[spec("127.0.0.1", 0, 0, 80, "tcp")], false, &[]).unwrap();
        assert!(hold(&b).is_err(), "held twice");
        drop(held);
        let again = hold(&b).unwrap();
        assert_eq!(again.sockets.len(), 1);
        assert!(TcpListener::bind(("127.0.0.1", b[0].host_port)).is_err());
    }

    #[test]
    fn resolve_refuses_a_port_another_process_holds() {
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let p = busy.local_addr().unwrap().port();
        match resolve(&[spec("", p, 0, 80, "tcp")], false, &[]) {
            Err(e @ Error::PortAllocated { .. }) => assert_eq!(
                e.to_string(),
                format!("Bind for 0.0.0.0:{p} failed: port is already allocated")
            ),
            other => panic!("{other:?}"),
        }
        let busy6 = TcpListener::bind("[::1]:0").unwrap();
        let p = busy6.local_addr().unwrap().port();
        match resolve(&[spec("::1", p, 0, 80, "tcp")], false, &[]) {
            Err(e) => assert_eq!(
                e.to_string(),
                format!("Bind for [::1]:{p} failed: port is already allocated")
            ),
            other => panic!("{other:?}"),
        }
        // all addresses also means [::] (an IPv6-only socket there is refused too)
        let v6 = bind_v6_any(0, "tcp").unwrap().expect("IPv6");
        let p = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn6>(
            std::os::fd::AsRawFd::as_raw_fd(&v6),
        )
        .unwrap()
        .port();
        match resolve(&[spec("", p, 0, 80, "tcp")], false, &[]) {
            Err(e) => assert_eq!(
                e.to_string(),
                format!("Bind for [::]:{p} failed: port is already allocated")
            ),
            other => panic!("{other:?}"),
        }
        // nothing of a refused request stays held
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let q = free.local_addr().unwrap().port();
        drop(free);
        let busy = UdpSocket::bind("0.0.0.0:0").unwrap();
        let u = busy.local_addr().unwrap().port();
        assert!(resolve(
            &[
                spec("127.0.0.1", q, 0, 80, "tcp"),
                spec("", u, 0, 53, "udp")
            ],
            false,
            &[]
        )
        .is_err());
        TcpListener::bind(("127.0.0.1", q)).unwrap();
    }

    #[test]
    fn resolve_random_ports_are_distinct() {
        let specs: Vec<PortSpec> = (1..=20).map(|cp| spec("", 0, 0, cp, "tcp")).collect();
        let b = resolve(&specs, false, &[]).unwrap().0;
        let ports: BTreeSet<u16> = b.iter().map(|b| b.host_port).collect();
        assert_eq!(ports.len(), 20);
        assert!(!ports.contains(&0));
    }

    #[test]
    fn resolve_publish_all() {
        let specs = [spec("", 18081, 0, 80, "tcp")];
        let exposed = [
            (80, "tcp".to_string()),
            (80, "udp".to_string()),
            (443, "tcp".to_string()),
            (443, "tcp".to_string()),
        ];
        let b = resolve(&specs, true, &exposed).unwrap().0;
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], bind("", 18081, 80, "tcp"));
        assert_eq!((b[1].container_port, b[1].proto.as_str()), (80, "udp"));
        assert_eq!((b[2].container_port, b[2].proto.as_str()), (443, "tcp"));
        assert!(b[1..]
            .iter()
            .all(|b| b.host_port != 0 && b.host_ip.is_empty()));
        // without -P exposed ports are not published
        assert_eq!(resolve(&specs, false, &exposed).unwrap().0.len(), 1);
    }

    #[test]
    fn resolve_host_range_skips_busy_ports() {
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let p = busy.local_addr().unwrap().port();
        let end = p.saturating_add(50);
        let specs = [spec("", p, end, 80, "tcp")];
        let b = resolve(&specs, false, &[]).unwrap().0;
        assert!(b[0].host_port > p && b[0].host_port <= end, "{b:?}");

        // ports taken by other bindings of the container are skipped too. The fixed port
        // q+1 must be free on the machine: other tests (and processes) bind ports too, so
        // a few fresh tries when it happens to be taken by someone else.
        let mut checked = false;
        for _ in 0..5 {
            let free = TcpListener::bind("0.0.0.0:0").unwrap();
            let q = free.local_addr().unwrap().port();
            drop(free);
            let specs = [
                spec("", q.saturating_add(1), q.saturating_add(20), 81, "tcp"),
                spec("", q.saturating_add(1), 0, 80, "tcp"),
            ];
            let b = match resolve(&specs, false, &[]) {
                Ok((b, _)) => b,
                Err(Error::PortAllocated { .. }) => continue,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(b[1].host_port, q.saturating_add(1));
            assert!(b[0].host_port > q.saturating_add(1), "{b:?}");
            checked = true;
            break;
        }
        assert!(checked, "no free port pair in five tries");
    }

    #[test]
    fn resolve_full_range_fails() {
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let p = busy.local_addr().unwrap().port();
        // a range of one busy port plus a port already bound by another spec
        let specs = [
            spec("", p.saturating_add(1), 0, 81, "tcp"),
            spec("", p, p.saturating_add(1), 80, "tcp"),
        ];
        match resolve(&specs, false, &[]) {
            Err(Error::Invalid(m)) => assert!(m.contains("no free host port"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resolve_conflicts() {
        let conflict = |specs: &[PortSpec]| match resolve(specs, false, &[]) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{specs:?}: {other:?}"),
        };
        let m = conflict(&[spec("", 18082, 0, 80, "tcp"), spec("", 18082, 0, 81, "tcp")]);
        assert!(m.contains("already published by -p 18082:80/tcp"), "{m}");
        let m = conflict(&[
            spec("127.0.0.1", 18082, 0, 80, "tcp"),
            spec("", 18082, 0, 81, "tcp"),
        ]);
        assert!(m.contains("on all addresses"), "{m}");
        conflict(&[
            spec("0.0.0.0", 18082, 0, 80, "tcp"),
            spec("127.0.0.1", 18082, 0, 81, "tcp"),
        ]);
        // different protocols, addresses or families don't conflict
        let _ = resolve(
            &[
                spec("", 18082, 0, 80, "tcp"),
                spec("", 18082, 0, 80, "udp"),
                spec("127.0.0.1", 18083, 0, 81, "tcp"),
                spec("127.0.0.2", 18083, 0, 82, "tcp"),
                spec("0.0.0.0", 18084, 0, 83, "tcp"),
                spec("::1", 18084, 0, 84, "tcp"),
            ],
            false,
            &[],
        )
        .unwrap();
    }

    #[test]
    fn resolve_rejects_bad_stored_specs() {
        assert!(resolve(&[spec("", 80, 0, 80, "icmp")], false, &[]).is_err());
        assert!(resolve(&[spec("nope", 80, 0, 80, "tcp")], false, &[]).is_err());
        assert!(resolve(&[spec("", 90, 80, 80, "tcp")], false, &[]).is_err());
        match resolve(&[], true, &[(80, "icmp".to_string())]) {
            Err(Error::Invalid(m)) => assert!(m.starts_with("-P (exposed port 80/icmp)"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn portmap_json() {
        let v = portmap_entries(&[
            bind("127.0.0.1", 8080, 80, "tcp"),
            bind("", 5353, 53, "udp"),
        ]);
        assert_eq!(
            v,
            serde_json::json!([
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
            ])
        );
    }

    #[test]
    fn ps_column() {
        let b = [
            bind("127.0.0.1", 9000, 9000, "udp"),
            bind("", 8080, 80, "tcp"),
        ];
        let exposed = [(80, "tcp".to_string()), (443, "tcp".to_string())];
        assert_eq!(
            format_ps(&b, &exposed),
            "0.0.0.0:8080->80/tcp, 443/tcp, 127.0.0.1:9000->9000/udp"
        );
        assert_eq!(format_ps(&[], &[]), "");
        assert_eq!(
            format_ps(&[bind("::1", 8080, 80, "tcp")], &[]),
            "[::1]:8080->80/tcp"
        );
    }

    #[test]
    fn ps_collapses_ranges() {
        let b = [
            bind("", 8002, 82, "tcp"),
            bind("", 8000, 80, "tcp"),
            bind("", 8001, 81, "tcp"),
            bind("", 8001, 81, "udp"),
            bind("127.0.0.1", 9000, 83, "tcp"),
            bind("", 7000, 84, "tcp"),
        ];
        let exposed = [
            (90, "tcp".to_string()),
            (91, "tcp".to_string()),
            (92, "tcp".to_string()),
            (94, "tcp".to_string()),
        ];
        assert_eq!(
            format_ps(&b, &exposed),
            "0.0.0.0:8000-8002->80-82/tcp, 0.0.0.0:8001->81/udp, 127.0.0.1:9000->83/tcp, \
             0.0.0.0:7000->84/tcp, 90-92/tcp, 94/tcp"
        );
        // consecutive container ports on non-consecutive host ports stay apart
        assert_eq!(
            format_ps(&[bind("", 8000, 80, "tcp"), bind("", 9000, 81, "tcp")], &[]),
            "0.0.0.0:8000->80/tcp, 0.0.0.0:9000->81/tcp"
        );
    }

    #[test]
    fn inspect_ports_map() {
        let b = [
            bind("", 8080, 80, "tcp"),
            bind("127.0.0.1", 8081, 80, "tcp"),
        ];
        let exposed = [(80, "tcp".to_string()), (81, "tcp".to_string())];
        assert_eq!(
            docker_ports_map(&b, &exposed),
            serde_json::json!({
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "127.0.0.1", "HostPort": "8081"},
                ],
                "81/tcp": null,
            })
        );
        assert_eq!(docker_ports_map(&[], &[]), serde_json::json!({}));
    }
}
