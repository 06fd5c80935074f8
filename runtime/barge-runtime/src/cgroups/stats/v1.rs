//! Readers of the cgroup v1 interface files, one controller hierarchy each.

use std::path::Path;

use super::files::{keyed, list, malformed, num, numbers, parse_u64, text};
use super::{Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Memory, MemoryEntry, Throttling};
use crate::error::Result;

// ---------------------------------------------------------------------------------------------
// cpu, cpuacct
// ---------------------------------------------------------------------------------------------

/// Clock ticks per second of cpuacct.stat (USER_HZ).
fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

pub(super) fn cpuacct_v1(dir: &Path) -> Result<Option<Cpu>> {
    let Some(total) = num(dir, "cpuacct.usage")? else {
        return Ok(None);
    };
    let mut u = CpuUsage {
        total,
        percpu: numbers(dir, "cpuacct.usage_percpu")?.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(stat) = keyed(dir, "cpuacct.stat")? {
        let hz = clock_ticks();
        u.user = ticks_to_ns(stat.get("user").copied().unwrap_or(0), hz);
        u.kernel = ticks_to_ns(stat.get("system").copied().unwrap_or(0), hz);
    }
    // cpuacct.usage_all: a "cpu user system" header, then one line per cpu (nanoseconds).
    if let Some(all) = text(dir, "cpuacct.usage_all")? {
        for line in all.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 3 {
                continue;
            }
            u.percpu_user
                .push(parse_u64(dir, "cpuacct.usage_all", f[1])?);
            u.percpu_kernel
                .push(parse_u64(dir, "cpuacct.usage_all", f[2])?);
        }
    }
    Ok(Some(Cpu {
        usage: u,
        ..Default::default()
    }))
}

pub(super) fn throttling_v1(dir: &Path) -> Result<Option<Throttling>> {
    Ok(keyed(dir, "cpu.stat")?.map(|s| {
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_time"),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// cpuset
// ---------------------------------------------------------------------------------------------

pub(super) fn cpuset_v1(dir: &Path) -> Result<Option<CpuSet>> {
    let Some(cpus) = list(dir, "cpuset.cpus")? else {
        return Ok(None);
    };
    let flag = |f: &str| num(dir, f).map(Option::unwrap_or_default);
    let relax = match text(dir, "cpuset.sched_relax_domain_level")? {
        Some(t) => t
            .trim()
            .parse()
            .map_err(|_| malformed(dir, "cpuset.sched_relax_domain_level", t.trim()))?,
        None => 0,
    };
    Ok(Some(CpuSet {
        cpus,
        mems: list(dir, "cpuset.mems")?.unwrap_or_default(),
        cpu_exclusive: flag("cpuset.cpu_exclusive")?,
        mem_hardwall: flag("cpuset.mem_hardwall")?,
        mem_exclusive: flag("cpuset.mem_exclusive")?,
        memory_migrate: flag("cpuset.memory_migrate")?,
        memory_spread_page: flag("cpuset.memory_spread_page")?,
        memory_spread_slab: flag("cpuset.memory_spread_slab")?,
        memory_pressure: flag("cpuset.memory_pressure")?,
        sched_load_balance: flag("cpuset.sched_load_balance")?,
        sched_relax_domain_level: relax,
    }))
}

// ---------------------------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------------------------

/// One v1 counter family (`memory`, `memory.memsw`, `memory.kmem`, `memory.kmem.tcp`).
fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<Option<MemoryEntry>> {
    let Some(usage) = num(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    let get = |f: &str| num(dir, &format!("{prefix}.{f}")).map(Option::unwrap_or_default);
    Ok(Some(MemoryEntry {
        usage,
        max: get("max_usage_in_bytes")?,
        failcnt: get("failcnt")?,
        limit: get("limit_in_bytes")?,
    }))
}

pub(super) fn memory_v1(dir: &Path) -> Result<Option<Memory>> {
    let Some(usage) = memory_entry_v1(dir, "memory")? else {
        return Ok(None);
    };
    let raw = keyed(dir, "memory.stat")?.unwrap_or_default();
    Ok(Some(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage,
        swap: memory_entry_v1(dir, "memory.memsw")?.unwrap_or_default(),
        kernel: memory_entry_v1(dir, "memory.kmem")?.unwrap_or_default(),
        kernel_tcp: memory_entry_v1(dir, "memory.kmem.tcp")?.unwrap_or_default(),
        raw,
        psi: None,
    }))
}

// ---------------------------------------------------------------------------------------------
// blkio
// ---------------------------------------------------------------------------------------------

/// A v1 blkio stat file: `major:minor [op] value` lines; `Total` lines are skipped.
fn blkio_entries(dir: &Path, file: &str) -> Result<Option<Vec<BlkioEntry>>> {
    let Some(t) = text(dir, file)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for line in t.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "Total" {
            continue;
        }
        let (dev, op, value) = match f.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] => (*dev, "", *value),
            _ => return Err(malformed(dir, file, line)),
        };
        let (major, minor) = dev
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| malformed(dir, file, line))?;
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: parse_u64(dir, file, value)?,
        });
    }
    Ok(Some(out))
}

/// v1: the CFQ files if the kernel still has them and they hold data, else BFQ's, else the
/// throttling counters (which every blkio hierarchy has) — runc's order.
pub(super) fn blkio_v1(dir: &Path) -> Result<Option<Blkio>> {
    if let Some(e) = blkio_entries(dir, "blkio.io_serviced_recursive")? {
        if !e.is_empty() {
            let g = |f: &str| blkio_entries(dir, f).map(Option::unwrap_or_default);
            return Ok(Some(Blkio {
                io_serviced_recursive: e,
                io_service_bytes_recursive: g("blkio.io_service_bytes_recursive")?,
                io_queued_recursive: g("blkio.io_queued_recursive")?,
                io_service_time_recursive: g("blkio.io_service_time_recursive")?,
                io_wait_time_recursive: g("blkio.io_wait_time_recursive")?,
                io_merged_recursive: g("blkio.io_merged_recursive")?,
                io_time_recursive: g("blkio.time_recursive")?,
                sectors_recursive: g("blkio.sectors_recursive")?,
                psi: None,
            }));
        }
    }
    for prefix in ["blkio.bfq.", "blkio.throttle."] {
        let serviced = blkio_entries(dir, &format!("{prefix}io_serviced_recursive"))?;
        let bytes = blkio_entries(dir, &format!("{prefix}io_service_bytes_recursive"))?;
        let found = serviced.is_some() || bytes.is_some();
        let serviced = serviced.unwrap_or_default();
        let bytes = bytes.unwrap_or_default();
        if (found && prefix == "blkio.throttle.") || !serviced.is_empty() || !bytes.is_empty() {
            return Ok(Some(Blkio {
                io_serviced_recursive: serviced,
                io_service_bytes_recursive: bytes,
                ..Default::default()
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::stats::tests::{put, v1_placement};
    use crate::cgroups::stats::{read, Hugetlb, Pids};

    #[test]
    fn v1_tree_is_read_into_runc_fields() {
        let t = tempfile::tempdir().unwrap();
        let p = v1_placement(
            t.path(),
            &[
                "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb",
            ],
        );
        let d = |c: &str| p.controllers[c].clone();
        put(
            &d("cpuacct"),
            &[
                ("cpuacct.usage", "5000000000\n"),
                ("cpuacct.usage_percpu", "3000000000 2000000000 \n"),
                ("cpuacct.stat", "user 300\nsystem 100\n"),
                (
                    "cpuacct.usage_all",
                    "cpu user system\n0 2500000000 500000000\n1 1500000000 500000000\n",
                ),
            ],
        );
        put(
            &d("cpu"),
            &[(
                "cpu.stat",
                "nr_periods 10\nnr_throttled 3\nthrottled_time 4500\nnr_bursts 0\nburst_time 0\n",
            )],
        );
        put(
            &d("cpuset"),
            &[
                ("cpuset.cpus", "0-2,5\n"),
                ("cpuset.mems", "0\n"),
                ("cpuset.cpu_exclusive", "0\n"),
                ("cpuset.sched_load_balance", "1\n"),
                ("cpuset.sched_relax_domain_level", "-1\n"),
            ],
        );
        put(
            &d("memory"),
            &[
                ("memory.usage_in_bytes", "25165824\n"),
                ("memory.max_usage_in_bytes", "30000000\n"),
                ("memory.failcnt", "2\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.memsw.usage_in_bytes", "25165824\n"),
                ("memory.memsw.max_usage_in_bytes", "30000000\n"),
                ("memory.memsw.failcnt", "0\n"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                ("memory.kmem.usage_in_bytes", "1048576\n"),
                ("memory.kmem.failcnt", "0\n"),
                (
                    "memory.stat",
                    "cache 4096\nrss 20971520\ntotal_rss 20971520\n",
                ),
            ],
        );
        put(
            &d("pids"),
            &[("pids.current", "3\n"), ("pids.max", "max\n")],
        );
        put(
            &d("blkio"),
            &[
                ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n",
                ),
                (
                    "blkio.throttle.io_serviced_recursive",
                    "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
                ),
            ],
        );
        put(
            &d("hugetlb"),
            &[
                ("hugetlb.2MB.usage_in_bytes", "4194304\n"),
                ("hugetlb.2MB.max_usage_in_bytes", "6291456\n"),
                ("hugetlb.2MB.failcnt", "1\n"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
                ("hugetlb.1GB.usage_in_bytes", "0\n"),
            ],
        );

        let s = read(&p).unwrap();
        let hz = clock_ticks();
        let cpu = s.cpu.as_ref().unwrap();
        assert_eq!(cpu.usage.total, 5_000_000_000);
        assert_eq!(cpu.usage.percpu, [3_000_000_000, 2_000_000_000]);
        assert_eq!(cpu.usage.percpu_user, [2_500_000_000, 1_500_000_000]);
        assert_eq!(cpu.usage.percpu_kernel, [500_000_000, 500_000_000]);
        assert_eq!(cpu.usage.user, 300 * 1_000_000_000 / hz);
        assert_eq!(cpu.usage.kernel, 100 * 1_000_000_000 / hz);
        assert_eq!(
            cpu.throttling,
            Throttling {
                periods: 10,
                throttled_periods: 3,
                throttled_time: 4500
            }
        );
        let cs = s.cpuset.as_ref().unwrap();
        assert_eq!(cs.cpus, [0, 1, 2, 5]);
        assert_eq!(cs.mems, [0]);
        assert_eq!(cs.sched_load_balance, 1);
        assert_eq!(cs.sched_relax_domain_level, -1);
        let m = s.memory.as_ref().unwrap();
        assert_eq!(
            m.usage,
            MemoryEntry {
                limit: 67108864,
                usage: 25165824,
                max: 30000000,
                failcnt: 2
            }
        );
        assert_eq!(m.swap.limit, 9223372036854771712);
        assert_eq!(m.kernel.usage, 1048576);
        assert_eq!(m.kernel_tcp, MemoryEntry::default(), "kmem.tcp absent");
        assert_eq!(m.cache, 4096);
        assert_eq!(m.raw["total_rss"], 20971520);
        assert_eq!(
            s.pids,
            Some(Pids {
                current: 3,
                limit: 0
            })
        );
        let b = s.blkio.as_ref().unwrap();
        let e = |op: &str, value| BlkioEntry {
            major: 254,
            minor: 0,
            op: op.into(),
            value,
        };
        assert_eq!(
            b.io_service_bytes_recursive,
            [e("Read", 4096), e("Write", 8192), e("Total", 12288)]
        );
        assert_eq!(b.io_serviced_recursive, [e("Read", 1), e("Write", 2)]);
        assert_eq!(s.hugetlb.len(), 2, "{:?}", s.hugetlb);
        assert_eq!(
            s.hugetlb["2MB"],
            Hugetlb {
                usage: 4194304,
                max: 6291456,
                failcnt: 1
            }
        );

        // The JSON names are runc's.
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["cpu"]["usage"]["total"], 5_000_000_000u64);
        assert_eq!(j["cpu"]["usage"]["percpu_kernel"][1], 500_000_000u64);
        assert_eq!(j["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(j["cpu"]["throttling"]["throttledTime"], 4500);
        assert_eq!(j["memory"]["usage"]["max"], 30000000);
        assert_eq!(
            j["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(j["memory"]["raw"]["rss"], 20971520);
        assert_eq!(j["pids"], serde_json::json!({"current": 3}));
        assert_eq!(j["blkio"]["ioServicedRecursive"][0]["op"], "Read");
        assert_eq!(j["hugetlb"]["2MB"]["failcnt"], 1);
        assert_eq!(j["hugetlb"]["1GB"], serde_json::json!({"failcnt": 0}));
        assert_eq!(j["cpuset"]["cpus"], serde_json::json!([0, 1, 2, 5]));
    }

    #[test]
    fn ticks_convert_to_nanoseconds() {
        assert_eq!(ticks_to_ns(250, 100), 2_500_000_000);
        assert_eq!(ticks_to_ns(1, 250), 4_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX, "saturates");
    }
}
