//! Readers of the cgroup v2 (unified hierarchy) interface files.

use std::path::Path;

use super::files::{keyed, list, malformed, num, parse_u64, psi, text};
use super::{Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Memory, MemoryEntry, Throttling};
use crate::error::Result;

// ---------------------------------------------------------------------------------------------
// cpu
// ---------------------------------------------------------------------------------------------

pub(super) fn cpu_v2(dir: &Path) -> Result<Option<Cpu>> {
    let Some(s) = keyed(dir, "cpu.stat")? else {
        return Ok(None);
    };
    let us = |k: &str| s.get(k).copied().unwrap_or(0).saturating_mul(1000);
    Ok(Some(Cpu {
        usage: CpuUsage {
            total: us("usage_usec"),
            user: us("user_usec"),
            kernel: us("system_usec"),
            ..Default::default()
        },
        throttling: Throttling {
            periods: s.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: s.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: us("throttled_usec"),
        },
        psi: psi(dir, "cpu.pressure")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// cpuset
// ---------------------------------------------------------------------------------------------

pub(super) fn cpuset_v2(dir: &Path) -> Result<Option<CpuSet>> {
    let Some(cpus) = list(dir, "cpuset.cpus.effective")? else {
        return Ok(None);
    };
    Ok(Some(CpuSet {
        cpus,
        mems: list(dir, "cpuset.mems.effective")?.unwrap_or_default(),
        ..Default::default()
    }))
}

// ---------------------------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------------------------

pub(super) fn memory_v2(dir: &Path) -> Result<Option<Memory>> {
    let Some(current) = num(dir, "memory.current")? else {
        return Ok(None);
    };
    let events = keyed(dir, "memory.events")?.unwrap_or_default();
    let usage = MemoryEntry {
        usage: current,
        limit: num(dir, "memory.max")?.unwrap_or(u64::MAX),
        max: num(dir, "memory.peak")?.unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // v1 reports memory+swap; report the same sum for compatibility, as runc does.
    let swap_limit = num(dir, "memory.swap.max")?.unwrap_or(0);
    let swap = MemoryEntry {
        usage: num(dir, "memory.swap.current")?
            .unwrap_or(0)
            .saturating_add(current),
        limit: if swap_limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit.saturating_add(usage.limit)
        },
        max: 0,
        failcnt: 0,
    };
    let raw = keyed(dir, "memory.stat")?.unwrap_or_default();
    Ok(Some(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        kernel: MemoryEntry::default(),
        kernel_tcp: MemoryEntry::default(),
        raw,
        psi: psi(dir, "memory.pressure")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// io
// ---------------------------------------------------------------------------------------------

/// v2 io.stat: `major:minor rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`.
pub(super) fn blkio_v2(dir: &Path) -> Result<Option<Blkio>> {
    let Some(t) = text(dir, "io.stat")? else {
        return Ok(None);
    };
    let mut out = Blkio::default();
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let Some(dev) = f.next() else { continue };
        let (major, minor) = dev
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| malformed(dir, "io.stat", line))?;
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: parse_u64(dir, "io.stat", v)?,
            });
        }
    }
    out.psi = psi(dir, "io.pressure")?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::cgroups::stats::tests::put;
    use crate::cgroups::stats::{read, Hugetlb, Pids};
    use crate::cgroups::{Mode, Placement};

    fn v2_placement(dir: &Path) -> Placement {
        fs::create_dir_all(dir).unwrap();
        Placement {
            mode: Mode::V2,
            unified: Some(dir.to_path_buf()),
            paths: vec![dir.to_path_buf()],
            freezer: Some(dir.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn v2_tree_is_read_into_runc_fields() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ctr");
        let p = v2_placement(&dir);
        put(
            &dir,
            &[
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n\
                     nr_throttled 2\nthrottled_usec 30\n",
                ),
                (
                    "cpu.pressure",
                    "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\n\
                     full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                ),
                ("cpuset.cpus.effective", "0-1\n"),
                ("cpuset.mems.effective", "0\n"),
                ("memory.current", "20000000\n"),
                ("memory.max", "33554432\n"),
                ("memory.peak", "25000000\n"),
                ("memory.swap.current", "1000\n"),
                ("memory.swap.max", "max\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
                ),
                ("memory.stat", "anon 19000000\nfile 8192\n"),
                ("pids.current", "4\n"),
                ("pids.max", "100\n"),
                (
                    "io.stat",
                    "254:1 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
                ),
                ("hugetlb.2MB.current", "2097152\n"),
                ("hugetlb.2MB.max", "max\n"),
                ("hugetlb.2MB.events", "max 3\n"),
                ("hugetlb.2MB.rsvd.current", "0\n"),
            ],
        );
        let s = read(&p).unwrap();
        let cpu = s.cpu.as_ref().unwrap();
        assert_eq!(cpu.usage.total, 1_500_000);
        assert_eq!(cpu.usage.user, 1_000_000);
        assert_eq!(cpu.usage.kernel, 500_000);
        assert!(cpu.usage.percpu.is_empty());
        assert_eq!(cpu.throttling.periods, 7);
        assert_eq!(cpu.throttling.throttled_periods, 2);
        assert_eq!(cpu.throttling.throttled_time, 30_000);
        let psi = cpu.psi.as_ref().unwrap();
        assert_eq!(psi.some.avg10, 1.5);
        assert_eq!(psi.some.total, 1234);
        assert_eq!(s.cpuset.as_ref().unwrap().cpus, [0, 1]);
        let m = s.memory.as_ref().unwrap();
        assert_eq!(
            m.usage,
            MemoryEntry {
                limit: 33554432,
                usage: 20000000,
                max: 25000000,
                failcnt: 5
            }
        );
        assert_eq!(m.swap.usage, 20001000, "mem+swap as on v1");
        assert_eq!(m.swap.limit, u64::MAX);
        assert_eq!(m.cache, 8192);
        assert_eq!(m.raw["anon"], 19000000);
        assert_eq!(
            s.pids,
            Some(Pids {
                current: 4,
                limit: 100
            })
        );
        let b = s.blkio.as_ref().unwrap();
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(b.io_service_bytes_recursive[0].value, 4096);
        assert_eq!(b.io_service_bytes_recursive[0].op, "Read");
        assert_eq!(b.io_service_bytes_recursive[0].major, 254);
        assert_eq!(b.io_service_bytes_recursive[0].minor, 1);
        assert_eq!(b.io_serviced_recursive[0].value, 1);
        assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), ["2MB"]);
        assert_eq!(
            s.hugetlb["2MB"],
            Hugetlb {
                usage: 2097152,
                max: 0,
                failcnt: 3
            }
        );
    }
}
