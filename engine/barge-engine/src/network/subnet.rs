//! Address plans for networks: parsing and checking `--subnet`/`--gateway`, the gateway
//! of a subnet, the host's routes, and picking a free subnet from a pool.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};

/// How many candidate subnets [`pick_free`] looks at, at most.
const MAX_SCAN: usize = 65536;

/// Parse a subnet in CIDR form (`10.1.2.0/24`, `fd00:1::/64`). The address must be the
/// network address (no host bits set) and the subnet must have room for a gateway and a
/// container: at most /30 for IPv4, /126 for IPv6.
pub fn parse_subnet(s: &str) -> Result<IpNet> {
    let net: IpNet = s.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "subnet {s:?}: not a subnet in CIDR form like 10.1.2.0/24 or fd00:1::/64"
        ))
    })?;
    if net.trunc() != net {
        return Err(Error::Invalid(format!(
            "subnet {s}: not a network address, did you mean {}?",
            net.trunc()
        )));
    }
    let max = match net {
        IpNet::V4(_) => 30,
        IpNet::V6(_) => 126,
    };
    if net.prefix_len() > max {
        return Err(Error::Invalid(format!(
            "subnet {s}: too small, a network needs room for a gateway and containers (at most /{max})"
        )));
    }
    Ok(net)
}

/// The first host address of the subnet, the usual gateway: 10.1.2.0/24 → 10.1.2.1,
/// fd00::/64 → fd00::1. (Meaningful for subnets [`parse_subnet`] accepts.)
pub fn gateway(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()).saturating_add(1))),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).saturating_add(1))),
    }
}

/// Check a `--gateway` for the subnet: inside it, and neither its network address nor (IPv4)
/// its broadcast address.
pub fn check_gateway(net: &IpNet, gw: IpAddr) -> Result<()> {
    if !net.contains(&gw) {
        return Err(Error::Invalid(format!(
            "--gateway {gw}: not inside subnet {net}"
        )));
    }
    if gw == net.network() {
        return Err(Error::Invalid(format!(
            "--gateway {gw}: the network address of subnet {net} can't be the gateway"
        )));
    }
    if matches!(net, IpNet::V4(_)) && gw == net.broadcast() {
        return Err(Error::Invalid(format!(
            "--gateway {gw}: the broadcast address of subnet {net} can't be the gateway"
        )));
    }
    Ok(())
}

/// The destinations of the host's routes (IPv4 main table from /proc/net/route, IPv6 from
/// /proc/net/ipv6_route), without default routes; sorted, without duplicates. Used to avoid
/// subnets already in use on the host. A file that can't be read contributes nothing.
pub fn host_routes() -> Vec<IpNet> {
    let mut out = Vec::new();
    match std::fs::read_to_string("/proc/net/route") {
        Ok(t) => out.extend(parse_route_v4(&t)),
        Err(e) => tracing::debug!("read /proc/net/route: {e}"),
    }
    match std::fs::read_to_string("/proc/net/ipv6_route") {
        Ok(t) => out.extend(parse_route_v6(&t)),
        Err(e) => tracing::debug!("read /proc/net/ipv6_route: {e}"),
    }
    out.sort();
    out.dedup();
    out
}

/// Parse /proc/net/route: after a header line, `Iface Destination Gateway Flags RefCnt Use
/// Metric Mask ...` with destination and mask in hex, as the kernel's in-memory (network
/// order) bytes read as a native integer — little-endian on usual hosts.
fn parse_route_v4(text: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue; // the header, or garbage
        };
        let dest = Ipv4Addr::from(dest.to_ne_bytes());
        let Ok(prefix) = ipnet::ipv4_mask_to_prefix(Ipv4Addr::from(mask.to_ne_bytes())) else {
            continue;
        };
        if prefix == 0 {
            continue;
        }
        if let Ok(n) = Ipv4Net::new(dest, prefix) {
            out.push(IpNet::V4(n.trunc()));
        }
    }
    out
}

/// Parse /proc/net/ipv6_route: `dest(32 hex) prefix(hex) src srcprefix nexthop metric
/// refcnt use flags iface`.
fn parse_route_v6(text: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 || f[0].len() != 32 {
            continue;
        }
        let (Ok(dest), Ok(prefix)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16))
        else {
            continue;
        };
        if prefix == 0 {
            continue;
        }
        if let Ok(n) = Ipv6Net::new(Ipv6Addr::from(dest), prefix) {
            out.push(IpNet::V6(n.trunc()));
        }
    }
    out
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn net_at(start: u128, prefix: u8, v4: bool) -> Option<IpNet> {
    if v4 {
        let a = Ipv4Addr::from(u32::try_from(start).ok()?);
        Ipv4Net::new(a, prefix).ok().map(IpNet::V4)
    } else {
        Ipv6Net::new(Ipv6Addr::from(start), prefix)
            .ok()
            .map(IpNet::V6)
    }
}

/// The first subnet of length `prefix` inside `pool` that overlaps none of `taken` (entries
/// of the other address family are ignored). None when `prefix` is shorter than the pool's
/// or longer than the family allows, or when nothing is free. Taken ranges are skipped as a
/// whole, and at most 65536 candidates are looked at.
pub fn pick_free(pool: IpNet, prefix: u8, taken: &[IpNet]) -> Option<IpNet> {
    if prefix < pool.prefix_len() || prefix > pool.max_prefix_len() {
        return None;
    }
    let v4 = matches!(pool, IpNet::V4(_));
    let end = addr_bits(pool.broadcast());
    // The taken ranges inside the pool as (first, last) addresses, sorted.
    let mut blocks: Vec<(u128, u128)> = taken
        .iter()
        .filter(|t| overlaps(&pool, t))
        .map(|t| (addr_bits(t.network()), addr_bits(t.broadcast())))
        .collect();
    blocks.sort_unstable();
    let mut blocks = blocks.into_iter().peekable();
    let mut cur = addr_bits(pool.network());
    for _ in 0..MAX_SCAN {
        let cand = net_at(cur, prefix, v4)?;
        let cand_last = addr_bits(cand.broadcast());
        // Blocks ending before the candidate can't block it or any later one.
        while blocks.next_if(|&(_, last)| last < cur).is_some() {}
        let mut blocked_to = None;
        while let Some(&(first, last)) = blocks.peek() {
            if first > cand_last {
                break;
            }
            blocked_to = Some(blocked_to.unwrap_or(last).max(last));
            blocks.next();
        }
        let Some(last) = blocked_to else {
            return Some(cand);
        };
        // CIDR blocks nest or are disjoint, so the address after the larger of the two
        // overlapping blocks starts the next aligned candidate.
        let next = last.max(cand_last).checked_add(1)?;
        if next > end {
            return None;
        }
        cur = next;
    }
    None
}

/// Whether two subnets share an address (never across address families).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn invalid(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parse_subnets() {
        assert_eq!(parse_subnet("10.1.2.0/24").unwrap(), n("10.1.2.0/24"));
        assert_eq!(parse_subnet("fd00:1::/64").unwrap(), n("fd00:1::/64"));
        assert_eq!(parse_subnet("10.0.0.0/30").unwrap(), n("10.0.0.0/30"));
        assert_eq!(parse_subnet("fd00::/126").unwrap(), n("fd00::/126"));
        assert_eq!(
            invalid(parse_subnet("10.1.2.3/24")),
            "subnet 10.1.2.3/24: not a network address, did you mean 10.1.2.0/24?"
        );
        assert!(invalid(parse_subnet("fd00::1/64")).contains("did you mean fd00::/64?"));
        assert!(invalid(parse_subnet("10.0.0.0/31")).contains("at most /30"));
        assert!(invalid(parse_subnet("10.0.0.0/32")).contains("at most /30"));
        assert!(invalid(parse_subnet("fd00::/127")).contains("at most /126"));
        assert!(invalid(parse_subnet("10.0.0.0")).contains("CIDR"));
        assert!(invalid(parse_subnet("10.0.0.0/33")).contains("CIDR"));
        assert!(invalid(parse_subnet("bogus")).contains("CIDR"));
    }

    #[test]
    fn gateways() {
        assert_eq!(
            gateway(&n("10.1.2.0/24")),
            "10.1.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            gateway(&n("fd00::/64")),
            "fd00::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            gateway(&n("10.0.0.4/30")),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        let net = n("10.1.2.0/24");
        check_gateway(&net, "10.1.2.1".parse().unwrap()).unwrap();
        check_gateway(&net, "10.1.2.254".parse().unwrap()).unwrap();
        assert!(invalid(check_gateway(&net, "10.1.3.1".parse().unwrap())).contains("not inside"));
        assert!(invalid(check_gateway(&net, "fd00::1".parse().unwrap())).contains("not inside"));
        assert!(
            invalid(check_gateway(&net, "10.1.2.0".parse().unwrap())).contains("network address")
        );
        assert!(invalid(check_gateway(&net, "10.1.2.255".parse().unwrap())).contains("broadcast"));
        let v6 = n("fd00::/64");
        check_gateway(&v6, "fd00::ffff:ffff:ffff:ffff".parse().unwrap()).unwrap();
        assert!(check_gateway(&v6, "fd00::".parse().unwrap()).is_err());
    }

    #[test]
    fn route_tables() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                  tun0\t0100000A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n";
        assert_eq!(
            parse_route_v4(v4),
            [n("192.168.0.0/24"), n("172.17.0.0/16"), n("10.0.0.1/32")]
        );
        let v6 = "00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001       lo\n\
                  fd000001000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        assert_eq!(parse_route_v6(v6), [n("::1/128"), n("fd00:1::/64")]);
        assert!(parse_route_v4("garbage\n").is_empty());
        assert!(parse_route_v6("zz 40\n").is_empty());
    }

    #[test]
    fn host_routes_are_sorted_and_not_default() {
        let r = host_routes();
        assert!(r.iter().all(|n| n.prefix_len() > 0));
        assert!(r.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn pick_free_v4() {
        let pool = n("10.89.0.0/16");
        assert_eq!(pick_free(pool, 24, &[]), Some(n("10.89.0.0/24")));
        let taken = [n("10.89.0.0/24"), n("10.89.1.0/25"), n("192.168.0.0/16")];
        assert_eq!(pick_free(pool, 24, &taken), Some(n("10.89.2.0/24")));
        // a larger taken block is skipped as a whole
        assert_eq!(
            pick_free(n("10.0.0.0/8"), 24, &[n("10.0.0.0/9")]),
            Some(n("10.128.0.0/24"))
        );
        // a taken block containing the pool
        assert_eq!(pick_free(pool, 24, &[n("10.0.0.0/8")]), None);
        // the pool itself
        assert_eq!(pick_free(pool, 16, &[]), Some(pool));
        assert_eq!(pick_free(pool, 16, &[n("10.89.200.0/24")]), None);
        // bad prefixes
        assert_eq!(pick_free(pool, 8, &[]), None);
        assert_eq!(pick_free(pool, 33, &[]), None);
        // the last candidate
        let all_but_last: Vec<IpNet> = (0..255).map(|i| n(&format!("10.89.{i}.0/24"))).collect();
        assert_eq!(
            pick_free(pool, 24, &all_but_last),
            Some(n("10.89.255.0/24"))
        );
        // other families don't matter
        assert_eq!(pick_free(pool, 24, &[n("::/0")]), Some(n("10.89.0.0/24")));
        // at the top of the address space
        assert_eq!(
            pick_free(n("255.255.255.0/24"), 25, &[n("255.255.255.0/25")]),
            Some(n("255.255.255.128/25"))
        );
        assert_eq!(
            pick_free(n("255.255.255.0/24"), 24, &[n("255.255.255.0/25")]),
            None
        );
    }

    #[test]
    fn pick_free_v6() {
        let pool = n("fd00:1::/48");
        assert_eq!(pick_free(pool, 64, &[]), Some(n("fd00:1::/64")));
        assert_eq!(
            pick_free(pool, 64, &[n("fd00:1::/64"), n("fd00:1:0:1::/64")]),
            Some(n("fd00:1:0:2::/64"))
        );
        assert_eq!(
            pick_free(pool, 64, &[n("fd00:1::/49")]),
            Some(n("fd00:1:0:8000::/64"))
        );
        assert_eq!(pick_free(pool, 64, &[n("fd00::/8")]), None);
        assert_eq!(pick_free(n("::/0"), 64, &[n("::/1")]), Some(n("8000::/64")));
        assert_eq!(pick_free(n("::/0"), 0, &[]), Some(n("::/0")));
        assert_eq!(
            pick_free(n("ffff::/16"), 17, &[n("ffff:8000::/17"), n("ffff::/17")]),
            None
        );
        assert_eq!(pick_free(pool, 129, &[]), None);
    }

    #[test]
    fn pick_free_caps_the_scan() {
        // half of every /64 taken: each candidate is blocked, and the scan gives up after
        // MAX_SCAN of them although later /64s are free
        let pool = n("fd00::/32");
        let base = u128::from("fd00::".parse::<Ipv6Addr>().unwrap());
        let taken: Vec<IpNet> = (0..(MAX_SCAN as u128 + 10))
            .rev()
            .map(|i| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base + (i << 64)), 65).unwrap()))
            .collect();
        let few = &taken[taken.len() - 100..];
        assert_eq!(pick_free(pool, 64, few), Some(n("fd00:0:0:64::/64")));
        assert_eq!(pick_free(pool, 65, few), Some(n("fd00::8000:0:0:0/65")));
        assert_eq!(pick_free(pool, 64, &taken), None);
    }

    #[test]
    fn overlap() {
        assert!(overlaps(&n("10.0.0.0/8"), &n("10.1.0.0/16")));
        assert!(overlaps(&n("10.1.0.0/16"), &n("10.0.0.0/8")));
        assert!(overlaps(&n("10.1.0.0/16"), &n("10.1.0.0/16")));
        assert!(!overlaps(&n("10.1.0.0/16"), &n("10.2.0.0/16")));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("::/0")));
        assert!(overlaps(&n("fd00::/8"), &n("fd00:1::/64")));
        assert!(!overlaps(&n("fd00:1::/64"), &n("fd00:2::/64")));
    }
}
