//! A container's resource usage (`docker stats`, `GET /containers/{id}/stats`): one typed
//! sample from its cgroups, the host's CPU time and its network namespace; CPU % from two
//! samples, as docker computes it.

pub mod proc;

use std::collections::BTreeMap;

use serde::Serialize;

pub use proc::NetStats;

use crate::error::Result;
use crate::Engine;

/// One block I/O counter (`io_service_bytes_recursive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// One reading of a container's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSample {
    /// When it was read: unix seconds and nanoseconds.
    pub read: (i64, u32),
    /// CPU time of the container, ns: total, per CPU, in kernel and user mode.
    pub cpu_total: u64,
    pub cpu_percpu: Vec<u64>,
    pub cpu_kernel: u64,
    pub cpu_user: u64,
    /// CPU time of the whole host, ns, and its online CPUs.
    pub system_cpu: u64,
    pub online_cpus: u32,
    /// CFS throttling: periods, throttled periods, throttled time (ns).
    pub throttling: (u64, u64, u64),
    /// Memory in use and the limit (the host's memory when the container has none), bytes.
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    pub memory_limit: u64,
    /// The cgroup's memory.stat counters.
    pub memory_stats: BTreeMap<String, u64>,
    pub blkio: Vec<BlkioEntry>,
    pub pids_current: u64,
    /// 0: no limit.
    pub pids_limit: u64,
    /// Per interface of the container's network namespace.
    pub networks: BTreeMap<String, NetStats>,
}

impl StatsSample {
    /// Memory in use without the page cache that can be dropped (what `docker stats` shows).
    pub fn memory_without_cache(&self) -> u64 {
        let inactive = self
            .memory_stats
            .get("total_inactive_file")
            .or_else(|| self.memory_stats.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        if inactive < self.memory_usage {
            self.memory_usage - inactive
        } else {
            self.memory_usage
        }
    }

    /// Memory % of the limit.
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            0.0
        } else {
            self.memory_without_cache() as f64 / self.memory_limit as f64 * 100.0
        }
    }
}

/// docker's CPU %: the container's share of the host's CPU time between two samples, times
/// the online CPUs (so one busy CPU is 100%).
pub fn cpu_percent(prev: &StatsSample, cur: &StatsSample) -> f64 {
    let cpu = cur.cpu_total.saturating_sub(prev.cpu_total) as f64;
    let system = cur.system_cpu.saturating_sub(prev.system_cpu) as f64;
    let cpus = if cur.online_cpus > 0 {
        cur.online_cpus as usize
    } else {
        cur.cpu_percpu.len()
    } as f64;
    if cpu > 0.0 && system > 0.0 {
        cpu / system * cpus * 100.0
    } else {
        0.0
    }
}

fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Engine {
    /// Read the usage of the running container `key`.
    pub fn stats_sample(&self, key: &str) -> Result<StatsSample> {
        let (rec, st) = self.find_active(key, "statistics are read from a running container")?;
        let placement = self.runtime()?.load(&rec.id)?.cgroup;
        let s = barge_runtime::cgroups::stats::read(&placement)?;
        let (system_cpu, online_cpus) = proc::system_cpu();
        let mut out = StatsSample {
            read: now(),
            system_cpu,
            online_cpus,
            pids_current: s.pids.as_ref().map(|p| p.current).unwrap_or(0),
            pids_limit: s.pids.as_ref().map(|p| p.limit).unwrap_or(0),
            networks: proc::net_dev(st.pid),
            ..Default::default()
        };
        if let Some(c) = &s.cpu {
            out.cpu_total = c.usage.total;
            out.cpu_percpu = c.usage.percpu.clone();
            out.cpu_kernel = c.usage.kernel;
            out.cpu_user = c.usage.user;
            out.throttling = (
                c.throttling.periods,
                c.throttling.throttled_periods,
                c.throttling.throttled_time,
            );
        }
        let host = proc::host_memory();
        if let Some(m) = &s.memory {
            out.memory_usage = m.usage.usage;
            out.memory_max_usage = m.usage.max;
            out.memory_limit = m.usage.limit;
            out.memory_stats = m.raw.clone();
        }
        // No limit (or one above the host's memory): the host's memory, as dockerd shows.
        if out.memory_limit == 0 || (host > 0 && out.memory_limit > host) {
            out.memory_limit = host;
        }
        if let Some(b) = &s.blkio {
            out.blkio = b
                .io_service_bytes_recursive
                .iter()
                .map(|e| BlkioEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op.clone(),
                    value: e.value,
                })
                .collect();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_percent_like_docker() {
        let prev = StatsSample {
            cpu_total: 1_000,
            system_cpu: 10_000,
            online_cpus: 2,
            ..Default::default()
        };
        let cur = StatsSample {
            cpu_total: 2_000,
            system_cpu: 20_000,
            online_cpus: 2,
            memory_usage: 100,
            memory_limit: 400,
            memory_stats: [("total_inactive_file".to_string(), 20)].into(),
            ..Default::default()
        };
        assert!((cpu_percent(&prev, &cur) - 20.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&cur, &cur), 0.0);
        assert_eq!(cur.memory_without_cache(), 80);
        assert!((cur.memory_percent() - 20.0).abs() < 1e-9);
    }
}
