//! What the host's /proc says that container statistics need: the system's CPU time, the
//! number of online CPUs, the host's memory, and a network namespace's interface counters.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters of one network interface (`/proc/<pid>/net/dev`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The system's CPU time in nanoseconds (the `cpu` line of /proc/stat, as dockerd counts
/// it) and the number of online CPUs (its `cpuN` lines).
pub fn parse_proc_stat(text: &str, ticks_per_sec: u64) -> (u64, u32) {
    let mut total = 0;
    let mut cpus = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal (guest time is in user).
                let jiffies: u64 = f.take(8).filter_map(|x| x.parse::<u64>().ok()).sum();
                total = jiffies.saturating_mul(1_000_000_000 / ticks_per_sec.max(1));
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// The host's system CPU time (ns) and online CPUs; zeros if /proc/stat can't be read.
pub fn system_cpu() -> (u64, u32) {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100);
    std::fs::read_to_string("/proc/stat")
        .map(|s| parse_proc_stat(&s, ticks))
        .unwrap_or((0, 0))
}

/// The host's memory in bytes (MemTotal), 0 if unknown.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// The interfaces of a `/proc/net/dev` text, loopback left out (docker shows the
/// container's own interfaces).
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetStats> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let n: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if name == "lo" || n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetStats {
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            },
        );
    }
    out
}

/// The interfaces of the network namespace process `pid` is in.
pub fn net_dev(pid: i32) -> BTreeMap<String, NetStats> {
    if pid <= 0 {
        return BTreeMap::new();
    }
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|s| parse_net_dev(&s))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_net_dev() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(stat, 100), (1000 * 10_000_000, 2));
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0\n";
        let m = parse_net_dev(dev);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m["eth0"],
            NetStats {
                rx_bytes: 1500,
                rx_packets: 10,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 700,
                tx_packets: 5,
                tx_errors: 3,
                tx_dropped: 4
            }
        );
    }
}
