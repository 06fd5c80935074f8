//! Host rules of a barge bridge network, kept per network (as docker does) rather than per
//! container: masquerading of the network's subnets towards the outside, and FORWARD
//! accepts for traffic from the bridge and for replies and published (DNATed) connections
//! to it, so that containers work on hosts whose FORWARD policy is DROP. Installed on first
//! use after a boot (a marker under the run root remembers it), removed with the network.
//!
//! iptables is run as a command (iptables-nft or legacy, whichever the host uses; the CNI
//! plugins do the same), under a host-wide lock so that racing first uses don't add a rule
//! twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::store::{Meta, Network};
use crate::error::{Error, Result};

const LOCK: &str = "/run/lock/barge-network.lock";

/// One rule: table, chain, whether it goes first, the match and target.
struct Rule {
    table: &'static str,
    chain: &'static str,
    insert: bool,
    spec: Vec<String>,
}

fn rules(name: &str, meta: &Meta, v6: bool) -> Vec<Rule> {
    let comment = format!("barge network {name}");
    let with_comment = |mut v: Vec<String>| {
        v.extend([
            "-m".into(),
            "comment".into(),
            "--comment".into(),
            comment.clone(),
        ]);
        v
    };
    let br = meta.bridge.clone();
    let mut out = Vec::new();
    let subnets: Vec<_> = meta
        .subnets
        .iter()
        .filter(|s| s.subnet.addr().is_ipv6() == v6)
        .collect();
    if subnets.is_empty() {
        return out;
    }
    if !meta.internal {
        for s in subnets {
            out.push(Rule {
                table: "nat",
                chain: "POSTROUTING",
                insert: false,
                spec: with_comment(vec![
                    "-s".into(),
                    s.subnet.to_string(),
                    "!".into(),
                    "-o".into(),
                    br.clone(),
                    "-j".into(),
                    "MASQUERADE".into(),
                ]),
            });
        }
        out.push(Rule {
            table: "filter",
            chain: "FORWARD",
            insert: true,
            spec: with_comment(vec!["-i".into(), br.clone(), "-j".into(), "ACCEPT".into()]),
        });
        out.push(Rule {
            table: "filter",
            chain: "FORWARD",
            insert: true,
            spec: with_comment(vec![
                "-o".into(),
                br,
                "-m".into(),
                "conntrack".into(),
                "--ctstate".into(),
                "RELATED,ESTABLISHED,DNAT".into(),
                "-j".into(),
                "ACCEPT".into(),
            ]),
        });
    }
    out
}

fn marker(runroot: &Path, net: &Network) -> PathBuf {
    runroot.join("net").join(format!("{}.rules", net.id()))
}

/// Make sure a barge network's host rules are in place (once per boot and run root).
pub fn ensure(runroot: &Path, net: &Network) -> Result<()> {
    let Some(meta) = &net.meta else {
        return Ok(());
    };
    let mark = marker(runroot, net);
    if mark.exists() {
        return Ok(());
    }
    let _lock = host_lock()?;
    for (bin, v6) in [("iptables", false), ("ip6tables", true)] {
        let rs = rules(net.name(), meta, v6);
        if rs.is_empty() {
            continue;
        }
        for r in rs {
            if !iptables(bin, r.table, "-C", r.chain, &r.spec)? {
                let op = if r.insert { "-I" } else { "-A" };
                if !iptables(bin, r.table, op, r.chain, &r.spec)? {
                    return Err(Error::Firewall(format!(
                        "network {}: {bin} -t {} {op} {} {} failed",
                        net.name(),
                        r.table,
                        r.chain,
                        r.spec.join(" ")
                    )));
                }
            }
        }
    }
    if let Some(dir) = mark.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&mark, b"");
    Ok(())
}

/// Remove a barge network's host rules (every copy), best effort.
pub fn remove(runroot: &Path, net: &Network) {
    let Some(meta) = &net.meta else {
        return;
    };
    let _lock = host_lock();
    for (bin, v6) in [("iptables", false), ("ip6tables", true)] {
        for r in rules(net.name(), meta, v6) {
            for _ in 0..8 {
                if !matches!(iptables(bin, r.table, "-D", r.chain, &r.spec), Ok(true)) {
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_file(marker(runroot, net));
}

/// Run one iptables command; whether it succeeded. Err only when the command can't run.
fn iptables(bin: &str, table: &str, op: &str, chain: &str, spec: &[String]) -> Result<bool> {
    let st = Command::new(bin)
        .args(["-w", "5", "-t", table, op, chain])
        .args(spec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::Firewall(format!("run {bin}: {e} (is iptables installed?)")))?;
    Ok(st.success())
}

fn host_lock() -> Result<crate::lock::ContainerLock> {
    let p = Path::new(LOCK);
    if let Some(d) = p.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    crate::lock::ContainerLock::acquire(p)
}
