//! cgroup v1 interface files, one function per controller.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxRdma};

use super::resources::{page_size, throttles, Phase};
use super::{read, read_u64, write};
use crate::error::{Error, Result};

const MEMSW: &str = "memory.memsw.limit_in_bytes";
const LIMIT: &str = "memory.limit_in_bytes";

pub fn memory(dir: &Path, m: &LinuxMemory, phase: Phase) -> Result<()> {
    let has_memsw = dir.join(MEMSW).exists();
    // Unlimited memory with no swap value means unlimited swap too: memsw may never be below
    // the memory limit.
    let swap = match (m.limit(), m.swap()) {
        (Some(-1), None) if has_memsw => Some(-1),
        (_, s) => s,
    };
    if phase == Phase::Update && m.check_before_update() == Some(true) {
        if let Some(l) = m.limit().filter(|l| *l > 0) {
            let usage = read_u64(dir, "memory.usage_in_bytes")?;
            if (l as u64) < usage {
                return Err(Error::InvalidArgument(format!(
                    "memory limit {l} is below the container's current usage {usage} \
                     (checkBeforeUpdate)"
                )));
            }
        }
    }
    if swap.is_some_and(|s| s != -1) && !has_memsw {
        return Err(Error::Unsupported(format!(
            "linux.resources.memory.swap: {} has no {MEMSW} (swap accounting is off)",
            dir.display()
        )));
    }
    match (m.limit(), swap.filter(|_| has_memsw)) {
        (Some(l), Some(s)) => {
            // memsw >= memory must hold after each write: raise memsw first when growing.
            let cur = read_u64(dir, LIMIT)?;
            if s == -1 || (cur as i128) < s as i128 {
                write(dir, MEMSW, s.to_string())?;
                write(dir, LIMIT, l.to_string())?;
            } else {
                write(dir, LIMIT, l.to_string())?;
                write(dir, MEMSW, s.to_string())?;
            }
        }
        (Some(l), None) => write(dir, LIMIT, l.to_string())?,
        (None, Some(s)) => write(dir, MEMSW, s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", r.to_string())?;
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel is deprecated by the kernel and ignored");
    }
    if let Some(k) = m.kernel_tcp() {
        write(dir, "memory.kmem.tcp.limit_in_bytes", k.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        write(dir, "memory.swappiness", s.to_string())?;
    }
    match (m.disable_oom_killer(), phase) {
        (Some(true), _) => write(dir, "memory.oom_control", "1")?,
        (Some(false), Phase::Update) => write(dir, "memory.oom_control", "0")?,
        _ => {}
    }
    if let Some(h) = m.use_hierarchy() {
        let v = if h { "1" } else { "0" };
        if read(dir, "memory.use_hierarchy")? != v {
            if let Err(e) = write(dir, "memory.use_hierarchy", v) {
                tracing::warn!("memory.useHierarchy={h} not applied: {e}");
            }
        }
    }
    Ok(())
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(p) = c.realtime_period() {
        write(dir, "cpu.rt_period_us", p.to_string()).map_err(rt_hint)?;
    }
    if let Some(r) = c.realtime_runtime() {
        write(dir, "cpu.rt_runtime_us", r.to_string()).map_err(rt_hint)?;
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.shares", s.to_string())?;
        let got = read_u64(dir, "cpu.shares")?;
        if got != s {
            return Err(Error::InvalidArgument(format!(
                "linux.resources.cpu.shares: the kernel set {got} instead of {s} (range 2..=262144)"
            )));
        }
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        write(dir, "cpu.cfs_period_us", p.to_string())?;
    }
    if let Some(q) = c.quota() {
        write(dir, "cpu.cfs_quota_us", q.to_string())?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i.to_string())?;
    }
    Ok(())
}

fn rt_hint(e: Error) -> Error {
    Error::Unsupported(format!(
        "{e} (realtime cgroup scheduling needs a kernel with CONFIG_RT_GROUP_SCHED)"
    ))
}

/// cpuset.cpus / cpuset.mems: the same file names on v1 and v2.
pub fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus() {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

pub fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // CFQ had blkio.weight; BFQ offers blkio.bfq.weight.
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| dir.join(f).exists());
    let need_weight = || {
        weight_file.ok_or_else(|| {
            Error::Unsupported(format!(
                "linux.resources.blockIO weights: {} has neither blkio.weight nor \
                 blkio.bfq.weight (the disks' I/O scheduler has no weights; use bfq)",
                dir.display()
            ))
        })
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write(dir, need_weight()?, w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write(dir, "blkio.leaf_weight", w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let file = format!("{}_device", need_weight()?);
            write(dir, &file, format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(w) = d.leaf_weight() {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            write(dir, "blkio.leaf_weight_device", line)?;
        }
    }
    let files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    for ((_, list), file) in throttles(b).into_iter().zip(files) {
        for d in list {
            write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        let size = checked_size(h.page_size())?;
        write(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            h.limit().to_string(),
        )?;
    }
    Ok(())
}

pub(crate) fn checked_size(s: &str) -> Result<&str> {
    page_size(s).map(|_| s).ok_or_else(|| {
        Error::Config(format!(
            "linux.resources.hugepageLimits: {s:?} is not a size like 2MB"
        ))
    })
}

/// rdma.max lines (`mlx4_0 hca_handle=2 hca_object=2000`): the same syntax on v1 and v2.
pub fn rdma(dir: &Path, devices: &HashMap<String, LinuxRdma>) -> Result<()> {
    let n = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
    for (name, l) in devices {
        write(
            dir,
            "rdma.max",
            format!(
                "{name} hca_handle={} hca_object={}",
                n(l.hca_handles()),
                n(l.hca_objects())
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fake::{get, tree};
    use super::*;

    #[test]
    fn memory_and_swap_are_written_in_a_safe_order() {
        let d = tree(&[
            (LIMIT, "9223372036854771712"),
            (MEMSW, "9223372036854771712"),
            ("memory.swappiness", "60"),
            ("memory.oom_control", "0"),
        ]);
        let m: LinuxMemory = serde_json::from_str(
            r#"{"limit":1048576,"swap":2097152,"swappiness":10,"disableOOMKiller":true}"#,
        )
        .unwrap();
        memory(d.path(), &m, Phase::Create).unwrap();
        assert_eq!(get(d.path(), LIMIT), "1048576");
        assert_eq!(get(d.path(), MEMSW), "2097152");
        assert_eq!(get(d.path(), "memory.swappiness"), "10");
        assert_eq!(get(d.path(), "memory.oom_control"), "1");
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let d = tree(&[(LIMIT, "100000000"), ("memory.usage_in_bytes", "5000000")]);
        let m: LinuxMemory =
            serde_json::from_str(r#"{"limit":1000000,"checkBeforeUpdate":true}"#).unwrap();
        let e = memory(d.path(), &m, Phase::Update).unwrap_err();
        assert!(e.to_string().contains("current usage 5000000"), "{e}");
        assert_eq!(get(d.path(), LIMIT), "100000000");
    }

    #[test]
    fn swap_without_swap_accounting_is_refused() {
        let d = tree(&[(LIMIT, "1")]);
        let m: LinuxMemory = serde_json::from_str(r#"{"limit":1048576,"swap":2097152}"#).unwrap();
        let e = memory(d.path(), &m, Phase::Create).unwrap_err();
        assert!(e.to_string().contains("swap accounting"), "{e}");
    }

    #[test]
    fn cpu_files() {
        let d = tree(&[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
        ]);
        let c: LinuxCpu =
            serde_json::from_str(r#"{"shares":512,"quota":50000,"period":200000}"#).unwrap();
        cpu(d.path(), &c).unwrap();
        assert_eq!(get(d.path(), "cpu.shares"), "512");
        assert_eq!(get(d.path(), "cpu.cfs_quota_us"), "50000");
        assert_eq!(get(d.path(), "cpu.cfs_period_us"), "200000");
    }

    #[test]
    fn blkio_weight_falls_back_to_bfq_and_throttles_use_device_numbers() {
        let d = tree(&[
            ("blkio.bfq.weight", "100"),
            ("blkio.throttle.read_bps_device", ""),
        ]);
        let b: LinuxBlockIo = serde_json::from_str(
            r#"{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}"#,
        )
        .unwrap();
        blkio(d.path(), &b).unwrap();
        assert_eq!(get(d.path(), "blkio.bfq.weight"), "300");
        assert_eq!(
            get(d.path(), "blkio.throttle.read_bps_device"),
            "8:0 1048576"
        );
        let none = tree(&[]);
        let e = blkio(none.path(), &b).unwrap_err();
        assert!(e.to_string().contains("bfq"), "{e}");
    }
}
