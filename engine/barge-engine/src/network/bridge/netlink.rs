//! A small synchronous rtnetlink client: the link, address and route requests the bridge
//! driver makes, each sent with an ACK request and answered before the next. A socket belongs
//! to the network namespace it was opened in: [`Netlink::open_in`] opens one inside a pinned
//! namespace from a short-lived thread (`setns` moves only the calling thread), and the socket
//! keeps working there from any thread afterwards.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// An rtnetlink socket in one network namespace.
pub(crate) struct Netlink {
    sock: Socket,
    seq: u32,
    /// Where the socket lives, for error messages.
    place: String,
}

fn errno_of(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Whether a request failed because what it adds is already there.
pub(crate) fn is_exists(e: &Error) -> bool {
    matches!(e, Error::Sys { source, .. } if *source == nix::Error::EEXIST)
}

/// Whether a request failed because the device it names is gone.
pub(crate) fn is_no_device(e: &Error) -> bool {
    matches!(e, Error::Sys { source, .. } if matches!(*source, nix::Error::ENODEV | nix::Error::ENOENT))
}

impl Netlink {
    /// A socket in the calling thread's (the process's) network namespace.
    pub(crate) fn open() -> Result<Self> {
        Self::socket("the host's network namespace".into())
    }

    fn socket(place: String) -> Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::Sys {
            what: format!("open a netlink socket in {place}"),
            source: errno_of(&e),
        })?;
        sock.bind_auto().map_err(|e| Error::Sys {
            what: format!("bind a netlink socket in {place}"),
            source: errno_of(&e),
        })?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::Sys {
                what: format!("connect a netlink socket in {place}"),
                source: errno_of(&e),
            })?;
        Ok(Netlink {
            sock,
            seq: 0,
            place,
        })
    }

    /// A socket inside the network namespace pinned at `netns`: a thread of its own enters
    /// the namespace (setns is per thread for CLONE_NEWNET; no fork), opens the socket and
    /// ends. The process's other threads never change namespace.
    pub(crate) fn open_in(netns: &Path) -> Result<Self> {
        let f = std::fs::File::open(netns).map_err(|source| Error::Io {
            what: "open network namespace",
            path: netns.to_path_buf(),
            source,
        })?;
        let place = format!("network namespace {}", netns.display());
        std::thread::spawn(move || -> Result<Netlink> {
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                |source| Error::Sys {
                    what: format!("enter {place}"),
                    source,
                },
            )?;
            Self::socket(place)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Spec(format!(
                "the thread entering network namespace {} panicked",
                netns.display()
            )))
        })
    }

    /// Send one request and wait for its answer; the messages that came before the ACK.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        let sys = |e: std::io::Error, place: &str| Error::Sys {
            what: format!("netlink: {} in {place}", what()),
            source: errno_of(&e),
        };
        self.sock.send(&buf, 0).map_err(|e| sys(e, &self.place))?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .map_err(|e| sys(e, &self.place))?;
            let mut off = 0usize;
            while off + 4 <= data.len() {
                let len =
                    u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                        as usize;
                if len < 16 || off + len > data.len() {
                    break;
                }
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..off + len])
                    .map_err(|e| {
                    Error::Spec(format!(
                        "netlink: {} in {}: unreadable answer: {e}",
                        what(),
                        self.place
                    ))
                })?;
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(out),
                            Some(_) => Err(sys(err.to_io(), &self.place)),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }

    /// The index of the link named `name`, None when there is none.
    pub(crate) fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0, &|| {
            format!("look up link {name}")
        }) {
            Ok(msgs) => Ok(msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if is_no_device(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create a bridge named `name`, up. EEXIST when it is there already.
    pub(crate) fn add_bridge(&mut self, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("create bridge {name}"),
        )
        .map(drop)
    }

    /// Bring link `index` up.
    pub(crate) fn set_up(&mut self, index: u32, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0, &|| {
            format!("bring {name} up")
        })
        .map(drop)
    }

    /// Create a veth pair: `host` here, up, with `mac` and attached to bridge `master`; its
    /// peer `peer` (down, `peer_mac`) directly in the namespace `netns` is open on.
    pub(crate) fn add_veth(
        &mut self,
        host: &str,
        mac: [u8; 6],
        master: u32,
        peer: &str,
        peer_mac: [u8; 6],
        netns: &impl AsFd,
    ) -> Result<()> {
        use std::os::fd::AsRawFd;
        // The peer comes up later (from inside its namespace): the kernel configures it
        // before the pair is linked, and a veth without its peer refuses to open (ENOTCONN).
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::Address(peer_mac.to_vec()));
        p.attributes
            .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("create veth pair {host} / {peer}"),
        )
        .map(drop)
    }

    /// Delete link `name` (a veth takes its peer with it). A missing link is not an error.
    pub(crate) fn del_link(&mut self, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), 0, &|| {
            format!("delete link {name}")
        }) {
            Err(e) if is_no_device(&e) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Add `addr/prefix` to link `index` (IPv4 with its broadcast address; IPv6 without
    /// duplicate address detection when `nodad`).
    pub(crate) fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        nodad: bool,
        dev: &str,
    ) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = prefix;
        match addr {
            IpAddr::V4(a) => {
                m.header.family = AddressFamily::Inet;
                m.attributes.push(AddressAttribute::Local(addr));
                m.attributes.push(AddressAttribute::Address(addr));
                if prefix < 31 {
                    let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                    m.attributes.push(AddressAttribute::Broadcast(
                        (u32::from(a) | host_bits).into(),
                    ));
                }
            }
            IpAddr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                if nodad {
                    m.header.flags = AddressHeaderFlags::Nodad;
                }
                m.attributes.push(AddressAttribute::Address(addr));
            }
        }
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add address {addr}/{prefix} to {dev}"),
        )
        .map(drop)
    }

    /// Add a route to `dst/prefix` via `gw` on link `index` (main table).
    pub(crate) fn add_route(
        &mut self,
        index: u32,
        dst: IpAddr,
        prefix: u8,
        gw: IpAddr,
        dev: &str,
    ) -> Result<()> {
        let mut m = RouteMessage::default();
        let (family, d, g) = match (dst, gw) {
            (IpAddr::V4(d), IpAddr::V4(g)) => (
                AddressFamily::Inet,
                RouteAddress::Inet(d),
                RouteAddress::Inet(g),
            ),
            (IpAddr::V6(d), IpAddr::V6(g)) => (
                AddressFamily::Inet6,
                RouteAddress::Inet6(d),
                RouteAddress::Inet6(g),
            ),
            _ => {
                return Err(Error::Invalid(format!(
                    "route to {dst}/{prefix} via {gw}: the gateway is of another address family"
                )))
            }
        };
        m.header.address_family = family;
        m.header.destination_prefix_length = prefix;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        if prefix > 0 {
            m.attributes.push(RouteAttribute::Destination(d));
        }
        m.attributes.push(RouteAttribute::Gateway(g));
        m.attributes.push(RouteAttribute::Oif(index));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add route {dst}/{prefix} via {gw} on {dev}"),
        )
        .map(drop)
    }
}
