//! Address allocation compatible with the CNI `host-local` plugin's on-disk store, so that
//! addresses handed out here and by the plugin (foreign networks, containers started by an
//! older barge) never collide and either can release the other's: one directory per network
//! (`/var/lib/cni/networks/<network>`), a file per address in use named by the address and
//! holding `<container id>\r\n<ifname>`, `last_reserved_ip.<range set>` with the last address
//! handed out (the next search starts after it), all under an exclusive `flock` of the
//! directory's `lock` file. A reservation is written to a temp file and hard-linked to its
//! name, so it appears whole and only if the address was free.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, IoContext, Result};

/// host-local's default data directory.
pub(crate) const DATA_DIR: &str = "/var/lib/cni/networks";

/// One range set of a network: its subnet and gateway (the gateway is never handed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeSet {
    pub subnet: IpNet,
    pub gateway: Option<IpAddr>,
}

/// What a reservation file holds for a container's interface.
fn owner(id: &str, ifname: &str) -> String {
    format!("{}\r\n{ifname}", id.trim())
}

/// The address store of one network.
pub(crate) struct Store {
    dir: PathBuf,
}

fn first_last(s: &IpNet) -> (u128, u128) {
    match s {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())) + 1,
            u128::from(u32::from(n.broadcast())).saturating_sub(1),
        ),
        IpNet::V6(n) => (u128::from(n.network()) + 1, u128::from(n.broadcast())),
    }
}

fn to_ip(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

fn ip_num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Store {
    pub(crate) fn new(network: &str) -> Self {
        Store {
            dir: Path::new(DATA_DIR).join(network),
        }
    }

    #[cfg(test)]
    pub(crate) fn at(dir: PathBuf) -> Self {
        Store { dir }
    }

    fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.dir).ctx("create address store", &self.dir)?;
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open", &path)?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, source)| Error::Sys {
            what: format!("lock address store {}", self.dir.display()),
            source,
        })
    }

    /// Reserve `ip` for the owner; false when it is taken.
    fn reserve(&self, ip: IpAddr, who: &str) -> Result<bool> {
        let path = self.dir.join(ip.to_string());
        if path.exists() {
            return Ok(false);
        }
        let tmp = self.dir.join(format!(".{ip}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(who.as_bytes()).ctx("write", &tmp)?;
        drop(f);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).ctx("reserve address", &path),
        }
    }

    /// Allocate one address per range set for `id`'s `ifname`; `requested` addresses are
    /// taken in the set whose subnet holds them (refused when in use or in no set). Returns
    /// (address, prefix length, gateway) per set, in order. Nothing is kept on failure.
    pub(crate) fn allocate(
        &self,
        sets: &[RangeSet],
        id: &str,
        ifname: &str,
        requested: &[IpAddr],
    ) -> Result<Vec<(IpAddr, u8, Option<IpAddr>)>> {
        let _lock = self.lock()?;
        let who = owner(id, ifname);
        for r in requested {
            if !sets.iter().any(|s| s.subnet.contains(r)) {
                return Err(Error::Invalid(format!(
                    "requested address {r} is in no subnet of network {}",
                    self.network()
                )));
            }
        }
        let mut out = Vec::new();
        let res = (|| -> Result<()> {
            for (i, set) in sets.iter().enumerate() {
                let ip = match requested.iter().find(|r| set.subnet.contains(*r)) {
                    Some(r) => {
                        if Some(*r) == set.gateway || !self.reserve(*r, &who)? {
                            return Err(Error::Conflict(format!(
                                "requested address {r} is already in use on network {}",
                                self.network()
                            )));
                        }
                        *r
                    }
                    None => self.next_free(i, set, &who)?,
                };
                out.push((ip, set.subnet.prefix_len(), set.gateway));
                let last = self.dir.join(format!("last_reserved_ip.{i}"));
                barge_util::fs::write_atomic(
                    &last,
                    ip.to_string().as_bytes(),
                    0o644,
                    barge_util::fs::Durability::Atomic,
                )
                .ctx("write", &last)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            for (ip, _, _) in &out {
                let _ = std::fs::remove_file(self.dir.join(ip.to_string()));
            }
            return Err(e);
        }
        Ok(out)
    }

    fn network(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The first free address after the set's last reserved one, wrapping round.
    fn next_free(&self, i: usize, set: &RangeSet, who: &str) -> Result<IpAddr> {
        let v4 = set.subnet.addr().is_ipv4();
        let (first, last) = first_last(&set.subnet);
        if first > last {
            return Err(Error::Conflict(format!(
                "subnet {} of network {} has no addresses to hand out",
                set.subnet,
                self.network()
            )));
        }
        let start = std::fs::read_to_string(self.dir.join(format!("last_reserved_ip.{i}")))
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
            .map(ip_num)
            .filter(|n| (first..=last).contains(n))
            .map(|n| if n == last { first } else { n + 1 })
            .unwrap_or(first);
        let mut n = start;
        loop {
            let ip = to_ip(v4, n);
            if Some(ip) != set.gateway && self.reserve(ip, who)? {
                return Ok(ip);
            }
            n = if n == last { first } else { n + 1 };
            if n == start {
                return Err(Error::Conflict(format!(
                    "no free address left in {} of network {}",
                    set.subnet,
                    self.network()
                )));
            }
        }
    }

    /// Release `id`'s `ifname` addresses: those in `known` (the ADD result's) when they are
    /// its, else whatever the store holds for it (host-local's scan).
    pub(crate) fn release(&self, id: &str, ifname: &str, known: &[IpAddr]) -> Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let who = owner(id, ifname);
        let mine = |p: &Path| {
            std::fs::read_to_string(p).is_ok_and(|s| s.trim() == who || s.trim() == id.trim())
        };
        let mut released = 0;
        for ip in known {
            let p = self.dir.join(ip.to_string());
            if mine(&p) && std::fs::remove_file(&p).is_ok() {
                released += 1;
            }
        }
        if released == known.len() && released > 0 {
            return Ok(());
        }
        let rd = std::fs::read_dir(&self.dir).ctx("read address store", &self.dir)?;
        for e in rd.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().parse::<IpAddr>().is_ok() && mine(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> Vec<RangeSet> {
        vec![
            RangeSet {
                subnet: "10.9.0.0/30".parse().unwrap(),
                gateway: Some("10.9.0.1".parse().unwrap()),
            },
            RangeSet {
                subnet: "fd00:9::/126".parse().unwrap(),
                gateway: Some("fd00:9::1".parse().unwrap()),
            },
        ]
    }

    #[test]
    fn allocates_like_host_local_and_releases() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::at(d.path().join("net"));
        let a = s.allocate(&sets(), "c1", "eth0", &[]).unwrap();
        assert_eq!(a[0].0.to_string(), "10.9.0.2");
        assert_eq!(a[0].1, 30);
        assert_eq!(a[1].0.to_string(), "fd00:9::2");
        let f = std::fs::read_to_string(d.path().join("net/10.9.0.2")).unwrap();
        assert_eq!(f, "c1\r\neth0");
        let last = std::fs::read_to_string(d.path().join("net/last_reserved_ip.1")).unwrap();
        assert_eq!(last, "fd00:9::2");
        // The /30 has no other host address (.1 is the gateway, .3 the broadcast).
        let e = s.allocate(&sets(), "c2", "eth0", &[]).unwrap_err();
        assert!(e.to_string().contains("no free address"), "{e}");
        s.release("c1", "eth0", &[a[0].0, a[1].0]).unwrap();
        assert!(!d.path().join("net/10.9.0.2").exists());
        assert!(!d.path().join("net/fd00:9::2").exists());
        // Free again; the v6 search goes on after the last one handed out.
        let b = s.allocate(&sets(), "c2", "eth0", &[]).unwrap();
        assert_eq!(b[0].0.to_string(), "10.9.0.2");
        assert_eq!(b[1].0.to_string(), "fd00:9::3");
        // Release without knowing the addresses scans.
        s.release("c2", "eth0", &[]).unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path().join("net"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<IpAddr>().is_ok())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn requested_addresses_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::at(d.path().join("net"));
        let ip: IpAddr = "10.9.0.3".parse().unwrap();
        let a = s.allocate(&sets()[..1], "c1", "eth0", &[ip]).unwrap();
        assert_eq!(a[0].0, ip);
        let e = s.allocate(&sets()[..1], "c2", "eth0", &[ip]).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        let e = s
            .allocate(&sets()[..1], "c2", "eth0", &["10.1.1.1".parse().unwrap()])
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
    }
}
