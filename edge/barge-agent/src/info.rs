//! What the node says about itself: [`NodeInfo`] in Join and Hello, [`NodeUsage`] with
//! every heartbeat.

use barge_edge_proto::object::{NodeInfo, NodeUsage};

/// `(MemTotal, MemAvailable)` in bytes, from one read of `/proc/meminfo`.
fn meminfo() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return (0, 0);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kb * 1024)
            })
            .unwrap_or(0)
    };
    (field("MemTotal"), field("MemAvailable"))
}

/// CPUs this process may use (read once: it looks at the affinity mask and cgroup quota).
fn cpus() -> u32 {
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    })
}

/// The machine: architecture, kernel, CPUs, memory.
pub fn node_info() -> NodeInfo {
    NodeInfo {
        architecture: std::env::consts::ARCH.to_string(),
        os: std::env::consts::OS.to_string(),
        kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        cpus: cpus(),
        memory_bytes: meminfo().0,
        addresses: Vec::new(),
    }
}

/// CPU time of the whole machine: (busy, total) jiffies from `/proc/stat`.
pub fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The machine's CPU jiffies and memory, read at most once a second per process (`edge
/// sim` runs thousands of agents in one process, each heartbeating; they share the reads).
fn machine_sample() -> (Option<(u64, u64)>, (u64, u64)) {
    type Sample = (std::time::Instant, Option<(u64, u64)>, (u64, u64));
    static LAST: std::sync::Mutex<Option<Sample>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, jiffies, mem)) = *last {
        if at.elapsed() < std::time::Duration::from_secs(1) {
            return (jiffies, mem);
        }
    }
    let (jiffies, mem) = (cpu_jiffies(), meminfo());
    *last = Some((std::time::Instant::now(), jiffies, mem));
    (jiffies, mem)
}

/// Usage since the previous sample `prev` (CPU in thousandths of a CPU over the machine).
pub fn usage(prev: &mut Option<(u64, u64)>, pods: u32, containers_running: u32) -> NodeUsage {
    let (now, (total, avail)) = machine_sample();
    let cpus = u64::from(cpus());
    let cpu_millis = match (*prev, now) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) * 1000 * cpus / (t1 - t0),
        _ => 0,
    };
    *prev = now;
    NodeUsage {
        cpu_millis,
        memory_used_bytes: total.saturating_sub(avail),
        pods,
        containers_running,
    }
}
