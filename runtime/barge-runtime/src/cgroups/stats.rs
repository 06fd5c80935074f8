//! Usage statistics of a container's cgroups, in the JSON shape of `runc events --stats`
//! (runc's `types.Stats`).
//!
//! Every controller is read from the directory [`Placement::dir_for`] names, with the v1 or v2
//! interface files it speaks. A controller the container doesn't have, or an interface file the
//! kernel doesn't offer, leaves its part out; only unreadable or malformed files are errors.
//!
//! Field names and omission rules follow runc's Go structs: numbers tagged `omitempty` there are
//! left out when zero here, the others are always present.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::{Driver, Placement};
use crate::error::{at, Error, Result};

/// Statistics of one container (runc's `types.Stats`).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<CpuSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio: Option<Blkio>,
    /// Page size as the kernel names it ("2MB", "1GB") → usage.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

fn zero(v: &u64) -> bool {
    *v == 0
}

/// CPU time (nanoseconds) and CFS throttling.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// CPU time consumed, in nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

/// CFS bandwidth throttling (time in nanoseconds).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// The cpuset the container may use.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// Memory usage in bytes.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory + swap (v1 `memsw`; on v2 computed the same way, as runc does).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat` as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// One memory counter: current usage, peak, limit and how often the limit was hit.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Number of tasks and their limit (0: no limit).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

/// Block I/O per device.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// One `major:minor op value` line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

/// Huge page usage of one page size.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Pressure stall information (cgroup v2 `*.pressure` files).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// Read the current statistics of every controller the container has.
pub fn read(p: &Placement) -> Result<Stats> {
    Ok(Stats {
        cpu: cpu(p)?,
        cpuset: match p.dir_for("cpuset") {
            Some((Driver::V1, d)) => cpuset_v1(d)?,
            Some((Driver::V2, d)) => cpuset_v2(d)?,
            None => None,
        },
        memory: match p.dir_for("memory") {
            Some((Driver::V1, d)) => memory_v1(d)?,
            Some((Driver::V2, d)) => memory_v2(d)?,
            None => None,
        },
        pids: match p.dir_for("pids") {
            Some((_, d)) => pids(d)?,
            None => None,
        },
        blkio: match p.dir_for("blkio") {
            Some((Driver::V1, d)) => blkio_v1(d)?,
            Some((Driver::V2, d)) => blkio_v2(d)?,
            None => None,
        },
        hugetlb: match p.dir_for("hugetlb") {
            Some((Driver::V1, d)) => hugetlb(d, Driver::V1)?,
            Some((Driver::V2, d)) => hugetlb(d, Driver::V2)?,
            None => BTreeMap::new(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Reading interface files.
// ---------------------------------------------------------------------------------------------

/// A file's content; `None` if it does not exist (controller or feature absent, cgroup gone).
fn text(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENODEV) =>
        {
            Ok(None)
        }
        Err(source) => Err(Error::Io {
            context: at("read", &path),
            source,
        }),
    }
}

fn malformed(dir: &Path, file: &str, what: &str) -> Error {
    Error::Container(format!(
        "{}: unexpected content {what:?}",
        dir.join(file).display()
    ))
}

fn parse_u64(dir: &Path, file: &str, s: &str) -> Result<u64> {
    match s {
        "max" => Ok(u64::MAX),
        _ => s.parse().map_err(|_| malformed(dir, file, s)),
    }
}

/// A file holding one number ("max" reads as u64::MAX); `None` if it does not exist.
fn num(dir: &Path, file: &str) -> Result<Option<u64>> {
    text(dir, file)?
        .map(|t| parse_u64(dir, file, t.trim()))
        .transpose()
}

/// A flat-keyed file (`key value` per line: memory.stat, cpu.stat, memory.events...). Lines
/// that are not `word number` are skipped.
fn keyed(dir: &Path, file: &str) -> Result<Option<BTreeMap<String, u64>>> {
    Ok(text(dir, file)?.map(|t| {
        t.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (k, v) = (f.next()?, f.next()?);
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }))
}

/// Whitespace-separated numbers (cpuacct.usage_percpu).
fn numbers(dir: &Path, file: &str) -> Result<Option<Vec<u64>>> {
    text(dir, file)?
        .map(|t| {
            t.split_whitespace()
                .map(|w| parse_u64(dir, file, w))
                .collect()
        })
        .transpose()
}

/// A cgroup v2 `*.pressure` file.
fn psi(dir: &Path, file: &str) -> Result<Option<Psi>> {
    let Some(t) = text(dir, file)? else {
        return Ok(None);
    };
    let mut out = Psi::default();
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let data = match f.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let bad = || malformed(dir, file, kv);
            match k {
                "avg10" => data.avg10 = v.parse().map_err(|_| bad())?,
                "avg60" => data.avg60 = v.parse().map_err(|_| bad())?,
                "avg300" => data.avg300 = v.parse().map_err(|_| bad())?,
                "total" => data.total = v.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
    }
    Ok(Some(out))
}

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

fn cpu(p: &Placement) -> Result<Option<Cpu>> {
    let mut out: Option<Cpu> = None;
    let mut v2_done = None;
    match p.dir_for("cpuacct") {
        Some((Driver::V1, d)) => out = cpuacct_v1(d)?,
        Some((Driver::V2, d)) => {
            out = cpu_v2(d)?;
            v2_done = Some(d);
        }
        None => {}
    }
    match p.dir_for("cpu") {
        Some((Driver::V1, d)) => {
            if let Some(t) = throttling_v1(d)? {
                out.get_or_insert_with(Cpu::default).throttling = t;
            }
        }
        Some((Driver::V2, d)) if v2_done != Some(d) => {
            if let Some(c) = cpu_v2(d)? {
                let o = out.get_or_insert_with(Cpu::default);
                o.throttling = c.throttling;
                o.psi = c.psi;
                if o.usage == CpuUsage::default() {
                    o.usage = c.usage;
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

fn cpuacct_v1(dir: &Path) -> Result<Option<Cpu>> {
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

fn throttling_v1(dir: &Path) -> Result<Option<Throttling>> {
    Ok(keyed(dir, "cpu.stat")?.map(|s| {
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_time"),
        }
    }))
}

fn cpu_v2(dir: &Path) -> Result<Option<Cpu>> {
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

/// A cpu/node list such as "0-3,8,10-11".
fn parse_list(dir: &Path, file: &str, s: &str) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n = |x: &str| x.trim().parse::<u16>().map_err(|_| malformed(dir, file, s));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (n(a)?, n(b)?);
                if b < a {
                    return Err(malformed(dir, file, s));
                }
                out.extend(a..=b);
            }
            None => out.push(n(part)?),
        }
    }
    Ok(out)
}

fn list(dir: &Path, file: &str) -> Result<Option<Vec<u16>>> {
    text(dir, file)?
        .map(|t| parse_list(dir, file, t.trim()))
        .transpose()
}

fn cpuset_v1(dir: &Path) -> Result<Option<CpuSet>> {
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

fn cpuset_v2(dir: &Path) -> Result<Option<CpuSet>> {
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

fn memory_v1(dir: &Path) -> Result<Option<Memory>> {
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

fn memory_v2(dir: &Path) -> Result<Option<Memory>> {
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
// pids
// ---------------------------------------------------------------------------------------------

/// The same files on v1 and v2. A "max" limit reads as 0 (no limit), as runc reports it.
fn pids(dir: &Path) -> Result<Option<Pids>> {
    let Some(current) = num(dir, "pids.current")? else {
        return Ok(None);
    };
    let limit = match num(dir, "pids.max")? {
        Some(u64::MAX) | None => 0,
        Some(n) => n,
    };
    Ok(Some(Pids { current, limit }))
}

// ---------------------------------------------------------------------------------------------
// blkio / io
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
fn blkio_v1(dir: &Path) -> Result<Option<Blkio>> {
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

/// v2 io.stat: `major:minor rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`.
fn blkio_v2(dir: &Path) -> Result<Option<Blkio>> {
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

// ---------------------------------------------------------------------------------------------
// hugetlb
// ---------------------------------------------------------------------------------------------

/// Every page size with a usage file: v1 `hugetlb.<size>.usage_in_bytes` (+ max_usage_in_bytes,
/// failcnt), v2 `hugetlb.<size>.current` (+ the `max` count of hugetlb.<size>.events).
fn hugetlb(dir: &Path, driver: Driver) -> Result<BTreeMap<String, Hugetlb>> {
    let suffix = match driver {
        Driver::V1 => ".usage_in_bytes",
        Driver::V2 => ".current",
    };
    let mut out = BTreeMap::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(Error::Io {
                context: at("list", dir),
                source,
            })
        }
    };
    let mut sizes: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            // Skip hugetlb.<size>.rsvd.* (reservations) and anything else nested.
            (!size.is_empty() && !size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    for size in sizes {
        let h = match driver {
            Driver::V1 => {
                let get = |f: &str| {
                    num(dir, &format!("hugetlb.{size}.{f}")).map(Option::unwrap_or_default)
                };
                Hugetlb {
                    usage: get("usage_in_bytes")?,
                    max: get("max_usage_in_bytes")?,
                    failcnt: get("failcnt")?,
                }
            }
            Driver::V2 => Hugetlb {
                usage: num(dir, &format!("hugetlb.{size}.current"))?.unwrap_or(0),
                max: 0,
                failcnt: keyed(dir, &format!("hugetlb.{size}.events"))?
                    .and_then(|e| e.get("max").copied())
                    .unwrap_or(0),
            },
        };
        out.insert(size, h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::Mode;

    fn put(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }

    /// A v1 placement with one directory per controller under `root`.
    fn v1_placement(root: &Path, ctrls: &[&str]) -> Placement {
        let mut p = Placement {
            mode: Mode::V1,
            ..Default::default()
        };
        for c in ctrls {
            let d = root.join(c).join("ctr");
            fs::create_dir_all(&d).unwrap();
            p.controllers.insert(c.to_string(), d.clone());
            p.paths.push(d);
        }
        p
    }

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

    #[test]
    fn missing_controllers_and_files_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        // Only a memory hierarchy, with only the usage file; nothing else.
        let p = v1_placement(t.path(), &["memory", "pids"]);
        put(
            &p.controllers["memory"],
            &[("memory.usage_in_bytes", "4096\n")],
        );
        let s = read(&p).unwrap();
        assert_eq!(s.cpu, None);
        assert_eq!(s.blkio, None);
        assert_eq!(s.pids, None, "pids dir without pids.current");
        assert!(s.hugetlb.is_empty());
        let m = s.memory.unwrap();
        assert_eq!(m.usage.usage, 4096);
        assert_eq!(m.swap, MemoryEntry::default());
        let j = serde_json::to_value(read(&p).unwrap()).unwrap();
        assert_eq!(
            j.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["memory"]
        );

        // An empty placement reads as empty stats.
        assert_eq!(read(&Placement::default()).unwrap(), Stats::default());
        // A v2 directory that vanished (container deleted meanwhile).
        let gone = Placement {
            mode: Mode::V2,
            unified: Some(t.path().join("gone")),
            ..Default::default()
        };
        assert_eq!(read(&gone).unwrap(), Stats::default());
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = v1_placement(t.path(), &["pids"]);
        put(&p.controllers["pids"], &[("pids.current", "lots\n")]);
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("pids.current") && e.contains("lots"), "{e}");
    }

    #[test]
    fn cpu_lists_parse() {
        let d = Path::new("/x");
        assert_eq!(parse_list(d, "f", "").unwrap(), Vec::<u16>::new());
        assert_eq!(parse_list(d, "f", "3").unwrap(), [3]);
        assert_eq!(parse_list(d, "f", "0-1,4-5,7").unwrap(), [0, 1, 4, 5, 7]);
        assert!(parse_list(d, "f", "5-1").is_err());
        assert!(parse_list(d, "f", "a").is_err());
    }

    #[test]
    fn ticks_convert_to_nanoseconds() {
        assert_eq!(ticks_to_ns(250, 100), 2_500_000_000);
        assert_eq!(ticks_to_ns(1, 250), 4_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX, "saturates");
    }
}
