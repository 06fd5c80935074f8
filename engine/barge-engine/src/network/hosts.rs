//! /etc/hosts kept current. Containers on a user-defined network find each other by name
//! through entries in their hosts files, rewritten (in place: the file is bind-mounted) when
//! a container's network on it comes up or goes down. Chosen over a DNS responder per
//! network because barge has no daemon to host one and every resident process costs memory
//! on small devices; the trade-off: programs that cache /etc/hosts see changes late.

use super::attach::Attachment;
use super::files::{self, HostEntry};
use crate::db::ContainerRecord;
use crate::Engine;

impl Engine {
    /// Rewrite the hosts file of `me` (if given) and of every container on one of
    /// `networks`.
    pub(crate) fn refresh_hosts(&self, networks: &[String], me: Option<&ContainerRecord>) {
        let lock_path = self.paths.runroot.join("net").join("hosts.lock");
        if let Some(d) = lock_path.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let _lock = crate::lock::ContainerLock::acquire(&lock_path);
        let mut all: Vec<(ContainerRecord, Vec<Attachment>)> = Vec::new();
        if networks.is_empty() {
            if let Some(r) = me {
                all.push((r.clone(), self.attachments(&r.id)));
            }
        } else {
            for r in self.db.all().unwrap_or_default() {
                let atts = self.attachments(&r.id);
                if !atts.is_empty() || me.is_some_and(|m| m.id == r.id) {
                    all.push((r, atts));
                }
            }
        }
        for (rec, atts) in &all {
            let target = me.is_some_and(|m| m.id == rec.id)
                || atts.iter().any(|a| networks.contains(&a.network));
            if !target {
                continue;
            }
            let path = self.paths.container(&rec.id).join("hosts");
            if let Err(e) = files::write_in_place(&path, &render(rec, atts, &all)) {
                tracing::warn!("container {}: update /etc/hosts: {e}", rec.id);
            }
        }
    }
}

/// A container's hosts file: its own addresses under its hostname, `--add-host` entries,
/// and the containers sharing a name-resolving network with it.
fn render(
    rec: &ContainerRecord,
    atts: &[Attachment],
    all: &[(ContainerRecord, Vec<Attachment>)],
) -> String {
    let mut entries = Vec::new();
    for a in atts {
        for (ip, _, _) in a.addresses() {
            entries.push(HostEntry {
                ip: ip.to_string(),
                names: vec![rec.config.hostname.clone()],
            });
        }
    }
    for h in &rec.config.extra_hosts {
        if let Ok(e) = files::parse_add_host(h) {
            if e.ip == files::HOST_GATEWAY {
                // docker's host-gateway: the host as the container reaches it, here the
                // gateway of its first network (each family's); left out without one.
                for gw in host_gateways(atts) {
                    entries.push(HostEntry {
                        ip: gw,
                        names: e.names.clone(),
                    });
                }
            } else {
                entries.push(e);
            }
        }
    }
    for a in atts.iter().filter(|a| a.dns) {
        for (other, oatts) in all {
            if other.id == rec.id {
                continue;
            }
            for oa in oatts.iter().filter(|oa| oa.network == a.network) {
                let mut names = vec![other.name.clone()];
                names.extend(oa.aliases.iter().cloned());
                names.push(other.id[..12.min(other.id.len())].to_string());
                for (ip, _, _) in oa.addresses() {
                    entries.push(HostEntry {
                        ip: ip.to_string(),
                        names: names.clone(),
                    });
                }
            }
        }
    }
    files::hosts_file(&entries)
}

/// The gateways (one per address family, IPv4 first) of the first network that has one.
fn host_gateways(atts: &[Attachment]) -> Vec<String> {
    for a in atts {
        let mut gws: Vec<std::net::IpAddr> = a
            .addresses()
            .into_iter()
            .filter_map(|(_, _, gw)| gw?.parse().ok())
            .collect();
        if !gws.is_empty() {
            gws.sort_by_key(|g| g.is_ipv6());
            gws.dedup_by_key(|g| g.is_ipv6());
            return gws.into_iter().map(|g| g.to_string()).collect();
        }
    }
    Vec::new()
}
