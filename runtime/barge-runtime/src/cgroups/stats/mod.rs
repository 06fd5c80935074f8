//! Usage statistics of a container's cgroups, in the JSON shape of `runc events --stats`
//! (runc's `types.Stats`).
//!
//! Every controller is read from the directory [`Placement::dir_for`] names, with the v1 or v2
//! interface files it speaks. A controller the container doesn't have, or an interface file the
//! kernel doesn't offer, leaves its part out; only unreadable or malformed files are errors.
//!
//! Field names and omission rules follow runc's Go structs: numbers tagged `omitempty` there are
//! left out when zero here, the others are always present.
//!
//! Layout: the serde types, [`read`] and the per-controller dispatch live here, with the
//! readers shared by v1 and v2 (pids, hugetlb); `files` reads and parses interface files,
//! `v1` and `v2` hold the readers specific to each hierarchy.

mod files;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use self::files::{keyed, num};
use self::v1::{blkio_v1, cpuacct_v1, cpuset_v1, memory_v1, throttling_v1};
use self::v2::{blkio_v2, cpu_v2, cpuset_v2, memory_v2};
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
// cpu, cpuacct
// ---------------------------------------------------------------------------------------------

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

    pub(super) fn put(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }

    /// A v1 placement with one directory per controller under `root`.
    pub(super) fn v1_placement(root: &Path, ctrls: &[&str]) -> Placement {
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
}
