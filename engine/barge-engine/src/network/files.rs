//! The container's /etc/resolv.conf and /etc/hosts: their contents (docker's rules, with
//! `--dns`, `--dns-search`, `--dns-option` and `--add-host`) and rewriting them in place.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Nameservers used when none of the host's is usable from the container (docker's).
pub const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The `--add-host` address docker replaces with the host's address as seen from the
/// container (`--add-host host.docker.internal:host-gateway`). [`parse_add_host`] accepts it
/// as is; the caller substitutes an IP before writing the file ([`hosts_file`] leaves out
/// entries whose address is not an IP).
pub const HOST_GATEWAY: &str = "host-gateway";

/// DNS settings of a container; an empty list means "not given, use the host's".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsOptions {
    /// `--dns`: nameserver addresses, replacing the host's.
    pub servers: Vec<String>,
    /// `--dns-search`: search domains, replacing the host's; a single "." means none.
    pub search: Vec<String>,
    /// `--dns-option`: resolver options (`ndots:2`), replacing the host's.
    pub options: Vec<String>,
}

impl DnsOptions {
    /// Check the values: servers are IP addresses; search domains and options are single
    /// non-empty words.
    pub fn validate(&self) -> Result<()> {
        for s in &self.servers {
            if s.parse::<IpAddr>().is_err() {
                return Err(Error::Invalid(format!("--dns {s:?}: not an IP address")));
            }
        }
        for (flag, list) in [
            ("--dns-search", &self.search),
            ("--dns-option", &self.options),
        ] {
            for v in list {
                if v.is_empty() || v.chars().any(char::is_whitespace) {
                    return Err(Error::Invalid(format!(
                        "{flag} {v:?}: must be one word without spaces"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Whether a nameserver is on the host's loopback (127.0.0.0/8 or ::1), so unreachable from
/// a container with its own network namespace (systemd-resolved's 127.0.0.53, dnsmasq).
fn is_local_nameserver(ns: &str) -> bool {
    match ns.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// A container's /etc/resolv.conf from the host's (`host` is its text), docker's way:
///
/// - nameservers: `--dns` if given; otherwise the host's, without the loopback ones unless
///   `keep_localhost` (the container shares the host's network); when that leaves none,
///   8.8.8.8 and 8.8.4.4 (with `keep_localhost` an empty list stays empty: the resolver
///   then asks the host's own 127.0.0.1, as on the host);
/// - `search`/`domain` lines: `--dns-search` if given (a single "." means none), otherwise
///   the host's;
/// - `options` lines: `--dns-option` if given, otherwise the host's;
/// - other lines (`sortlist`, ...) are kept; comments and blank lines are dropped.
///
/// The result ends with a newline.
pub fn resolv_conf(host: &str, dns: &DnsOptions, keep_localhost: bool) -> String {
    let mut nameservers: Vec<&str> = Vec::new();
    let mut search_lines: Vec<&str> = Vec::new();
    let mut option_lines: Vec<&str> = Vec::new();
    let mut other_lines: Vec<&str> = Vec::new();
    for line in host.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => nameservers.extend(words.next()),
            Some("search" | "domain") => search_lines.push(t),
            Some("options") => option_lines.push(t),
            _ => other_lines.push(t),
        }
    }

    let mut out = String::new();
    if dns.servers.is_empty() {
        if !keep_localhost {
            nameservers.retain(|ns| !is_local_nameserver(ns));
            if nameservers.is_empty() {
                nameservers.extend(DEFAULT_NAMESERVERS);
            }
        }
        for ns in nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    } else {
        for ns in &dns.servers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }

    if dns.search.is_empty() {
        for l in search_lines {
            out.push_str(l);
            out.push('\n');
        }
    } else if dns.search != ["."] {
        out.push_str(&format!("search {}\n", dns.search.join(" ")));
    }

    if dns.options.is_empty() {
        for l in option_lines {
            out.push_str(l);
            out.push('\n');
        }
    } else {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }

    for l in other_lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// One line of /etc/hosts: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// The address (canonical text form), or [`HOST_GATEWAY`] until substituted.
    pub ip: String,
    /// Host names for the address.
    pub names: Vec<String>,
}

/// Parse an `--add-host` value: `name:ip` or `name=ip`, the IP possibly IPv6 (`name:::1`,
/// `name:[::1]`, `name=::1`) or [`HOST_GATEWAY`].
pub fn parse_add_host(s: &str) -> Result<HostEntry> {
    let bad = |msg: &str| Err(Error::Invalid(format!("--add-host {s:?}: {msg}")));
    // docker: `=` first, else the first colon (names have no colons, IPv6 addresses do).
    let Some((name, ip)) = s.split_once('=').or_else(|| s.split_once(':')) else {
        return bad("expected NAME:IP or NAME=IP");
    };
    if name.is_empty() {
        return bad("missing host name");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return bad("host name must not contain spaces or \"#\"");
    }
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    let ip = if ip == HOST_GATEWAY {
        ip.to_string()
    } else {
        match ip.parse::<IpAddr>() {
            Ok(a) => a.to_string(),
            Err(_) => return bad(&format!("{ip:?} is not an IP address")),
        }
    };
    Ok(HostEntry {
        ip,
        names: vec![name.to_string()],
    })
}

/// docker's default lines of /etc/hosts.
const DEFAULT_HOSTS: [&str; 6] = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
];

/// A container's /etc/hosts: docker's default block, then one `ip\tname1 name2` line per
/// entry, in order. Entries without names, entries whose address is not an IP (an
/// unsubstituted [`HOST_GATEWAY`]) and lines identical to an earlier one are left out.
/// The result ends with a newline.
pub fn hosts_file(entries: &[HostEntry]) -> String {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = String::new();
    let mut add = |line: String, out: &mut String| {
        if seen.insert(line.clone()) {
            out.push_str(&line);
            out.push('\n');
        }
    };
    for l in DEFAULT_HOSTS {
        add(l.to_string(), &mut out);
    }
    for e in entries {
        if e.names.is_empty() {
            continue;
        }
        if e.ip.parse::<IpAddr>().is_err() {
            tracing::warn!(ip = %e.ip, names = ?e.names, "/etc/hosts entry without an IP address left out");
            continue;
        }
        add(format!("{}\t{}", e.ip, e.names.join(" ")), &mut out);
    }
    out
}

/// Rewrite a file without replacing its inode, for files bind-mounted into running
/// containers (a rename would not be seen through the mount): open it (created with mode
/// 0644 if missing), write `content` from the start, then truncate to its length. A reader
/// racing the rewrite may see a mix; no fsync.
pub fn write_in_place(path: &Path, content: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .ctx("open", path)?;
    f.write_all(content.as_bytes()).ctx("write", path)?;
    f.set_len(content.len() as u64).ctx("truncate", path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn dns(servers: &[&str], search: &[&str], options: &[&str]) -> DnsOptions {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        DnsOptions {
            servers: v(servers),
            search: v(search),
            options: v(options),
        }
    }

    const RESOLVED: &str = "# This is /run/systemd/resolve/stub-resolv.conf\n\
                            \n\
                            nameserver 127.0.0.53\n\
                            options edns0 trust-ad\n\
                            search lan example.com\n";

    #[test]
    fn resolv_drops_loopback_and_falls_back() {
        assert_eq!(
            resolv_conf(RESOLVED, &DnsOptions::default(), false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan example.com\noptions edns0 trust-ad\n"
        );
        // on the host network the host's file is usable as is
        assert_eq!(
            resolv_conf(RESOLVED, &DnsOptions::default(), true),
            "nameserver 127.0.0.53\nsearch lan example.com\noptions edns0 trust-ad\n"
        );
        let host = "nameserver 127.0.0.1\nnameserver ::1\nnameserver 192.168.1.1\n\
                    nameserver fe80::1%eth0\ndomain lan\nsortlist 130.155.160.0/255.255.240.0\n";
        assert_eq!(
            resolv_conf(host, &DnsOptions::default(), false),
            "nameserver 192.168.1.1\nnameserver fe80::1%eth0\ndomain lan\n\
             sortlist 130.155.160.0/255.255.240.0\n"
        );
        assert_eq!(
            resolv_conf("", &DnsOptions::default(), false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf("", &DnsOptions::default(), true), "");
    }

    #[test]
    fn resolv_flags_replace() {
        let d = dns(
            &["1.1.1.1", "2606:4700::1111"],
            &["corp", "example.org"],
            &["ndots:2"],
        );
        assert_eq!(
            resolv_conf(RESOLVED, &d, false),
            "nameserver 1.1.1.1\nnameserver 2606:4700::1111\nsearch corp example.org\noptions ndots:2\n"
        );
        // --dns may name a loopback server on purpose
        assert_eq!(
            resolv_conf(RESOLVED, &dns(&["127.0.0.1"], &["."], &[]), false),
            "nameserver 127.0.0.1\noptions edns0 trust-ad\n"
        );
        // "." drops domain lines too
        assert_eq!(
            resolv_conf(
                "nameserver 10.0.0.1\ndomain lan\n",
                &dns(&[], &["."], &[]),
                false
            ),
            "nameserver 10.0.0.1\n"
        );
    }

    #[test]
    fn dns_validation() {
        dns(&["1.1.1.1", "::1"], &["lan"], &["ndots:2"])
            .validate()
            .unwrap();
        DnsOptions::default().validate().unwrap();
        let msg = |d: DnsOptions| match d.validate() {
            Err(Error::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg(dns(&["dns.google"], &[], &[])),
            r#"--dns "dns.google": not an IP address"#
        );
        assert!(msg(dns(&[], &["a b"], &[])).starts_with("--dns-search"));
        assert!(msg(dns(&[], &[], &[""])).starts_with("--dns-option"));
    }

    #[test]
    fn add_host_forms() {
        let e = |ip: &str, name: &str| HostEntry {
            ip: ip.into(),
            names: vec![name.into()],
        };
        assert_eq!(parse_add_host("db:10.0.0.5").unwrap(), e("10.0.0.5", "db"));
        assert_eq!(parse_add_host("db=10.0.0.5").unwrap(), e("10.0.0.5", "db"));
        assert_eq!(parse_add_host("v6:::1").unwrap(), e("::1", "v6"));
        assert_eq!(parse_add_host("v6:[::1]").unwrap(), e("::1", "v6"));
        assert_eq!(parse_add_host("v6=fd00:0::5").unwrap(), e("fd00::5", "v6"));
        assert_eq!(
            parse_add_host("host.docker.internal:host-gateway").unwrap(),
            e(HOST_GATEWAY, "host.docker.internal")
        );
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "d b:1.2.3.4",
            "db:1.2.3",
            "db:nothost",
            "d#b:1.1.1.1",
        ] {
            match parse_add_host(bad) {
                Err(Error::Invalid(m)) => assert!(m.starts_with("--add-host"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn hosts_contents() {
        let entries = [
            HostEntry {
                ip: "10.88.0.5".into(),
                names: vec!["abc123".into(), "web".into()],
            },
            HostEntry {
                ip: "10.0.0.9".into(),
                names: vec![],
            },
            HostEntry {
                ip: "10.0.0.7".into(),
                names: vec!["db".into()],
            },
            HostEntry {
                ip: "10.0.0.7".into(),
                names: vec!["db".into()],
            },
            HostEntry {
                ip: HOST_GATEWAY.into(),
                names: vec!["host.docker.internal".into()],
            },
            HostEntry {
                ip: "127.0.0.1".into(),
                names: vec!["localhost".into()],
            },
        ];
        assert_eq!(
            hosts_file(&entries),
            "127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             ff00::0\tip6-mcastprefix\n\
             ff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n\
             10.88.0.5\tabc123 web\n\
             10.0.0.7\tdb\n"
        );
        assert!(hosts_file(&[]).ends_with("ff02::2\tip6-allrouters\n"));
    }

    #[test]
    fn write_in_place_keeps_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        write_in_place(&path, "first version, rather long\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644 & !umask());
        let ino = meta.ino();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first version, rather long\n"
        );

        // an open reader (like a bind mount) sees the new contents through the same file
        let reader = std::fs::File::open(&path).unwrap();
        write_in_place(&path, "short\n").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "short\n");
        assert_eq!(reader.metadata().unwrap().len(), 6);

        let long = "a much longer version of the file than before\n".repeat(100);
        write_in_place(&path, &long).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), long);

        write_in_place(&path, "").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn write_in_place_reports_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("hosts");
        match write_in_place(&path, "x") {
            Err(Error::Io { what, path: p, .. }) => {
                assert_eq!(what, "open");
                assert_eq!(p, path);
            }
            other => panic!("{other:?}"),
        }
    }

    /// The process's umask, from /proc/self/status (setting it would race other tests).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }
}
