//! cgroup v2 interface files, the conversions from the spec's v1-shaped values, and delivering
//! controllers down the tree through `cgroup.subtree_control`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::resources::{throttles, Phase};
use super::v1::checked_size;
use super::{read, read_u64, write, Driver, Mode, Placement};
use crate::error::{Error, Result};

/// The v2 controller serving a v1 controller name; `None` where v2 has no controller (freezer
/// and devices are built into the core, net_cls/net_prio don't exist).
pub fn controller_name(v1: &str) -> Option<&'static str> {
    Some(match v1 {
        "memory" => "memory",
        "cpu" | "cpuacct" => "cpu",
        "cpuset" => "cpuset",
        "blkio" | "io" => "io",
        "pids" => "pids",
        "hugetlb" => "hugetlb",
        "rdma" => "rdma",
        "misc" => "misc",
        _ => return None,
    })
}

fn words(dir: &Path, file: &str) -> Vec<String> {
    read(dir, file)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether the unified tree can deliver `controller` to the container (hybrid hosts).
pub fn offered(unified: &Path, controller: &str) -> bool {
    let from = unified.parent().unwrap_or(unified);
    words(from, "cgroup.controllers")
        .iter()
        .any(|c| c == controller)
}

/// Controllers to enable for the container: on v2 hosts every one the kernel offers (stats need
/// them); on hybrid hosts only those a configured resource is served by in the unified tree.
pub fn wanted(p: &Placement, r: &LinuxResources) -> Vec<String> {
    let mut need: Vec<&str> = Vec::new();
    let mut want = |set: bool, c: &'static str| {
        if set {
            need.push(c);
        }
    };
    want(r.memory().is_some(), "memory");
    want(r.cpu().is_some(), "cpu");
    want(
        r.cpu()
            .as_ref()
            .is_some_and(|c| c.cpus().is_some() || c.mems().is_some()),
        "cpuset",
    );
    want(r.pids().is_some(), "pids");
    want(r.block_io().is_some(), "blkio");
    want(
        r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        "hugetlb",
    );
    want(r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma");
    for key in r.unified().iter().flat_map(HashMap::keys) {
        if let Some(c) = key.split('.').next().and_then(controller_name) {
            need.push(c);
        }
    }
    let mut out: Vec<String> = need
        .into_iter()
        .filter(|c| matches!(p.dir_for(c), Some((Driver::V2, _))))
        .filter_map(controller_name)
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Enable controllers in `cgroup.subtree_control` from `delegate_from` down to the container's
/// parent. On v2 hosts every offered controller is enabled where possible; the `needed` ones
/// must succeed.
pub fn enable(p: &Placement, needed: &[String]) -> Result<()> {
    let (Some(dir), Some(top)) = (&p.unified, &p.delegate_from) else {
        return Ok(());
    };
    let all = p.mode == Mode::V2;
    if !all && needed.is_empty() {
        return Ok(());
    }
    let Ok(below) = dir.strip_prefix(top) else {
        return Ok(());
    };
    let mut chain: Vec<PathBuf> = vec![top.clone()];
    let mut cur = top.clone();
    for c in below.components() {
        cur.push(c);
        chain.push(cur.clone());
    }
    chain.pop(); // the container's own directory gets no subtree_control writes
    for ancestor in &chain {
        let offered = words(ancestor, "cgroup.controllers");
        let on = words(ancestor, "cgroup.subtree_control");
        for c in needed {
            if !offered.contains(c) {
                return Err(Error::Unsupported(format!(
                    "cgroup v2 controller {c} is not available in {} (its parent does not \
                     delegate it)",
                    ancestor.display()
                )));
            }
        }
        let candidates: Vec<&String> = if all {
            offered.iter().collect()
        } else {
            needed.iter().collect()
        };
        // A non-root cgroup with processes of its own must not get controllers: domain ones
        // fail with EBUSY, and threaded ones (cpuset, pids) succeed but turn its new children
        // into "domain invalid" cgroups that can't take processes.
        let has_procs = ancestor.join("cgroup.type").exists()
            && !read(ancestor, "cgroup.procs")
                .unwrap_or_default()
                .is_empty();
        if has_procs {
            if let Some(c) = needed.iter().find(|c| !on.contains(c)) {
                return Err(Error::Container(format!(
                    "cannot enable cgroup v2 controller {c} in {}: it has processes of its \
                     own (cgroup v2 allows controllers only in cgroups without them); give \
                     linux.cgroupsPath an absolute path outside the runtime's cgroup",
                    ancestor.display()
                )));
            }
            continue;
        }
        for c in candidates.into_iter().filter(|c| !on.contains(c)) {
            match write(ancestor, "cgroup.subtree_control", format!("+{c}")) {
                Ok(()) => {}
                Err(e) if needed.contains(c) => return Err(e),
                Err(e) => tracing::debug!("controller {c} not enabled: {e}"),
            }
        }
    }
    Ok(())
}

/// "max" for -1 (unlimited), else the number.
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.shares (2..=262144, default 1024) → cpu.weight (1..=10000, default 100).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio weight (10..=1000) → io.weight (1..=10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

/// The spec's swap is memory+swap; v2's memory.swap.max is swap alone.
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    match (limit, swap) {
        (Some(-1), None) => Ok(Some("max".into())),
        (_, None | Some(0)) => Ok(None),
        (_, Some(-1)) => Ok(Some("max".into())),
        (None | Some(0) | Some(-1), Some(_)) => Err(Error::InvalidArgument(
            "linux.resources.memory.swap: a swap limit needs a memory limit on cgroup v2".into(),
        )),
        (Some(l), Some(s)) if s < l => Err(Error::InvalidArgument(format!(
            "linux.resources.memory.swap: {s} is below memory.limit {l}"
        ))),
        (Some(l), Some(s)) => Ok(Some((s - l).to_string())),
    }
}

pub fn memory(dir: &Path, m: &LinuxMemory, phase: Phase) -> Result<()> {
    if phase == Phase::Update && m.check_before_update() == Some(true) {
        if let Some(l) = m.limit().filter(|l| *l > 0) {
            let usage = read_u64(dir, "memory.current")?;
            if (l as u64) < usage {
                return Err(Error::InvalidArgument(format!(
                    "memory limit {l} is below the container's current usage {usage} \
                     (checkBeforeUpdate)"
                )));
            }
        }
    }
    if let Some(s) = swap_max(m.limit(), m.swap())? {
        if dir.join("memory.swap.max").exists() {
            write(dir, "memory.swap.max", s)?;
        } else if s != "max" {
            return Err(Error::Unsupported(format!(
                "linux.resources.memory.swap: {} has no memory.swap.max (swap accounting is off)",
                dir.display()
            )));
        }
    }
    if let Some(l) = m.limit() {
        write(dir, "memory.max", max_or(l))?;
    }
    if let Some(r) = m.reservation() {
        write(dir, "memory.low", max_or(r))?;
    }
    for (set, what) in [
        (m.kernel().is_some(), "kernel"),
        (m.kernel_tcp().is_some(), "kernelTCP"),
        (m.swappiness().is_some(), "swappiness"),
        (m.disable_oom_killer() == Some(true), "disableOOMKiller"),
    ] {
        if set {
            tracing::warn!("linux.resources.memory.{what} has no cgroup v2 equivalent; ignored");
        }
    }
    Ok(())
}

pub fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(Error::Unsupported(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime \
             bandwidth control"
                .into(),
        ));
    }
    if let Some(w) = c.shares().map(shares_to_weight).filter(|w| *w != 0) {
        write(dir, "cpu.weight", w.to_string())?;
    }
    if c.quota().is_some() || c.period().is_some_and(|p| p != 0) {
        // cpu.max holds both; keep the current value of the one not given.
        let cur = read(dir, "cpu.max").unwrap_or_else(|_| "max 100000".into());
        let mut parts = cur.split_whitespace();
        let (cur_quota, cur_period) = (
            parts.next().unwrap_or("max").to_string(),
            parts.next().unwrap_or("100000").to_string(),
        );
        let quota = c.quota().map_or(cur_quota, max_or);
        let period = c
            .period()
            .filter(|p| *p != 0)
            .map_or(cur_period, |p| p.to_string());
        write(dir, "cpu.max", format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", i.to_string())?;
    }
    Ok(())
}

pub fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes the v1 range directly; io.weight (the io cost model) needs converting.
    let bfq = dir.join("io.bfq.weight").exists();
    let conv = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_to_io_weight(w)
        }
    };
    let file = if bfq { "io.bfq.weight" } else { "io.weight" };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write(dir, file, format!("default {}", conv(w)))?;
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("linux.resources.blockIO.leafWeight has no cgroup v2 equivalent; ignored");
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), conv(w)),
            )?;
        }
    }
    for ((_, list), key) in throttles(b)
        .into_iter()
        .zip(["rbps", "wbps", "riops", "wiops"])
    {
        for d in list {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

pub fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        let size = checked_size(h.page_size())?;
        write(dir, &format!("hugetlb.{size}.max"), h.limit().to_string())?;
        // Reservations are limited too where the kernel has them (5.7+), as runc does.
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if dir.join(&rsvd).exists() {
            write(dir, &rsvd, h.limit().to_string())?;
        }
    }
    Ok(())
}

/// Raw `linux.resources.unified` key/values, written to the container's unified directory.
pub fn unified(p: &Placement, kv: &HashMap<String, String>) -> Result<()> {
    let dir = match (p.mode, &p.unified) {
        (Mode::V1, _) | (_, None) => {
            return Err(Error::Unsupported(
                "linux.resources.unified: this host has no cgroup v2 hierarchy".into(),
            ))
        }
        (_, Some(d)) => d,
    };
    let mut keys: Vec<&String> = kv.keys().collect();
    keys.sort();
    for key in keys {
        if !dir.join(key).exists() {
            return Err(Error::Unsupported(format!(
                "linux.resources.unified.{key}: {} has no such file (controller not enabled?)",
                dir.display()
            )));
        }
        write(dir, key, &kv[key])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fake::{get, tree};
    use super::*;
    use std::fs;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(
            swap_max(Some(100), Some(300)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(swap_max(Some(-1), None).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(Some(100), None).unwrap(), None);
        assert!(swap_max(None, Some(300)).is_err());
        assert!(swap_max(Some(300), Some(100)).is_err());
    }

    #[test]
    fn memory_and_cpu_files() {
        let d = tree(&[("memory.swap.max", "max"), ("cpu.max", "max 100000")]);
        let m: LinuxMemory =
            serde_json::from_str(r#"{"limit":1048576,"swap":3145728,"reservation":-1}"#).unwrap();
        memory(d.path(), &m, Phase::Create).unwrap();
        assert_eq!(get(d.path(), "memory.max"), "1048576");
        assert_eq!(get(d.path(), "memory.swap.max"), "2097152");
        assert_eq!(get(d.path(), "memory.low"), "max");
        let c: LinuxCpu =
            serde_json::from_str(r#"{"shares":1024,"quota":50000,"burst":1000,"idle":1}"#).unwrap();
        cpu(d.path(), &c).unwrap();
        assert_eq!(get(d.path(), "cpu.weight"), "39");
        assert_eq!(get(d.path(), "cpu.max"), "50000 100000");
        assert_eq!(get(d.path(), "cpu.max.burst"), "1000");
        assert_eq!(get(d.path(), "cpu.idle"), "1");
        // Changing only the period keeps the quota.
        let c: LinuxCpu = serde_json::from_str(r#"{"period":200000}"#).unwrap();
        cpu(d.path(), &c).unwrap();
        assert_eq!(get(d.path(), "cpu.max"), "50000 200000");
        let rt: LinuxCpu = serde_json::from_str(r#"{"realtimeRuntime":5}"#).unwrap();
        assert!(cpu(d.path(), &rt).is_err());
    }

    #[test]
    fn io_and_hugetlb_files() {
        let d = tree(&[("io.max", ""), ("hugetlb.2MB.rsvd.max", "max")]);
        let b: LinuxBlockIo = serde_json::from_str(
            r#"{"weight":500,"throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":100}]}"#,
        )
        .unwrap();
        io(d.path(), &b).unwrap();
        assert_eq!(get(d.path(), "io.weight"), "default 4950");
        assert_eq!(get(d.path(), "io.max"), "8:16 wiops=100");
        let h: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize":"2MB","limit":4194304}]"#).unwrap();
        hugetlb(d.path(), &h).unwrap();
        assert_eq!(get(d.path(), "hugetlb.2MB.max"), "4194304");
        assert_eq!(get(d.path(), "hugetlb.2MB.rsvd.max"), "4194304");
    }

    /// A fake unified tree: root offers controllers, our cgroup `a` sits below it.
    fn fake_v2() -> (tempfile::TempDir, Placement) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::write(
            root.join("cgroup.controllers"),
            "cpu io memory pids hugetlb",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        for d in ["a", "a/b", "a/b/ctr"] {
            fs::create_dir(root.join(d)).unwrap();
            fs::write(root.join(d).join("cgroup.controllers"), "cpu memory").unwrap();
            fs::write(root.join(d).join("cgroup.subtree_control"), "").unwrap();
        }
        let p = Placement {
            mode: Mode::V2,
            unified: Some(root.join("a/b/ctr")),
            delegate_from: Some(root.join("a")),
            ..Default::default()
        };
        (t, p)
    }

    #[test]
    fn controllers_are_enabled_from_the_delegation_point_down() {
        let (t, p) = fake_v2();
        enable(&p, &["memory".to_string()]).unwrap();
        // A regular file keeps the last write: memory was the last of the offered ones.
        assert_eq!(
            get(&t.path().join("a"), "cgroup.subtree_control"),
            "+memory"
        );
        assert_eq!(
            get(&t.path().join("a/b"), "cgroup.subtree_control"),
            "+memory"
        );
        // Never above the delegation point, never in the container's own directory.
        assert_eq!(get(t.path(), "cgroup.subtree_control"), "");
        assert_eq!(get(&t.path().join("a/b/ctr"), "cgroup.subtree_control"), "");
        let e = enable(&p, &["pids".to_string()]).unwrap_err();
        assert!(
            e.to_string().contains("controller pids is not available"),
            "{e}"
        );
    }

    #[test]
    fn unified_keys_are_written_raw_and_unknown_files_refused() {
        let (t, p) = fake_v2();
        let ctr = t.path().join("a/b/ctr");
        fs::write(ctr.join("memory.high"), "max").unwrap();
        let kv = HashMap::from([("memory.high".to_string(), "5000000".to_string())]);
        unified(&p, &kv).unwrap();
        assert_eq!(get(&ctr, "memory.high"), "5000000");
        let kv = HashMap::from([("memory.nope".to_string(), "1".to_string())]);
        assert!(unified(&p, &kv).is_err());
    }
}
