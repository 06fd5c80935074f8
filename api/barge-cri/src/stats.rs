//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: the engine's
//! cgroup samples of containers, and the pod cgroup's own counters for a sandbox.

use std::path::Path;

use barge_engine::db::ContainerRecord;
use barge_engine::Engine;

use crate::proto::*;
use crate::status::{engine, CriResult};

fn u64v(value: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value })
}

fn attributes(rec: &ContainerRecord) -> ContainerAttributes {
    let s = crate::container::status_of_meta(rec);
    ContainerAttributes {
        id: rec.id.clone(),
        metadata: Some(s.0),
        labels: crate::labels::public(&rec.config.labels),
        annotations: s.1,
    }
}

/// One container's stats; CPU and memory only while it runs.
pub fn container(e: &Engine, rec: &ContainerRecord) -> ContainerStats {
    let now = crate::time::now_nanos();
    let mut out = ContainerStats {
        attributes: Some(attributes(rec)),
        writable_layer: Some(FilesystemUsage {
            timestamp: now,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: e.images.root().join("snapshots").display().to_string(),
            }),
            used_bytes: u64v(e.container_size_rw(&rec.id)),
            inodes_used: None,
        }),
        ..Default::default()
    };
    if let Ok(s) = e.stats_sample(&rec.id) {
        let ts = s.read.0.saturating_mul(1_000_000_000) + i64::from(s.read.1);
        out.cpu = Some(CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: u64v(s.cpu_total),
            usage_nano_cores: None,
        });
        let stat = |k: &str| {
            s.memory_stats
                .get(&format!("total_{k}"))
                .or_else(|| s.memory_stats.get(k))
                .copied()
        };
        out.memory = Some(MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(s.memory_without_cache()),
            available_bytes: None,
            usage_bytes: u64v(s.memory_usage),
            rss_bytes: stat("rss").or_else(|| stat("anon")).and_then(u64v_opt),
            page_faults: stat("pgfault").and_then(u64v_opt),
            major_page_faults: stat("pgmajfault").and_then(u64v_opt),
        });
    }
    out
}

fn u64v_opt(v: u64) -> Option<UInt64Value> {
    u64v(v)
}

/// ContainerStats of one CRI container.
pub fn one(e: &Engine, id: &str) -> CriResult<ContainerStats> {
    let rec = crate::container::find(e, id)?;
    Ok(container(e, &rec))
}

/// ListContainerStats with CRI's filter.
pub fn list(e: &Engine, f: Option<&ContainerStatsFilter>) -> CriResult<Vec<ContainerStats>> {
    let mut out = Vec::new();
    for (rec, _) in crate::container::all(e)? {
        let sandbox = rec
            .config
            .labels
            .get(crate::labels::SANDBOX)
            .cloned()
            .unwrap_or_default();
        if let Some(f) = f {
            if (!f.id.is_empty() && !rec.id.starts_with(&f.id))
                || (!f.pod_sandbox_id.is_empty() && !sandbox.starts_with(&f.pod_sandbox_id))
                || !crate::labels::select(&f.label_selector, &rec.config.labels)
            {
                continue;
            }
        }
        out.push(container(e, &rec));
    }
    Ok(out)
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_value(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CPU time (ns) and memory (usage, working set) of a pod cgroup: cgroup v1 controller
/// directories or a v2 directory, whichever of `dirs` have the files.
fn cgroup_usage(dirs: &[std::path::PathBuf]) -> (Option<u64>, Option<(u64, u64)>) {
    let mut cpu = None;
    let mut mem = None;
    for d in dirs {
        if cpu.is_none() {
            cpu = read_u64(&d.join("cpuacct.usage"))
                .or_else(|| stat_value(&d.join("cpu.stat"), "usage_usec").map(|u| u * 1000));
        }
        if mem.is_none() {
            if let Some(u) = read_u64(&d.join("memory.usage_in_bytes")) {
                let inactive =
                    stat_value(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
                mem = Some((u, u.saturating_sub(inactive)));
            } else if let Some(u) = read_u64(&d.join("memory.current")) {
                let inactive = stat_value(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
                mem = Some((u, u.saturating_sub(inactive)));
            }
        }
    }
    (cpu, mem)
}

/// PodSandboxStats of one sandbox: the pod cgroup's CPU and memory, and its containers'.
pub fn sandbox(e: &Engine, id: &str) -> CriResult<PodSandboxStats> {
    let i = engine(e.pod_inspect(id))?;
    let now = crate::time::now_nanos();
    let (cpu, mem) = cgroup_usage(&i.sandbox.cgroups);
    let r = &i.record;
    let mut containers = Vec::new();
    for c in &i.containers {
        if let Ok(rec) = e.db.find(&c.id) {
            containers.push(container(e, &rec));
        }
    }
    Ok(PodSandboxStats {
        attributes: Some(PodSandboxAttributes {
            id: r.id.clone(),
            metadata: Some(PodSandboxMetadata {
                name: r.config.metadata.name.clone(),
                uid: r.config.metadata.uid.clone(),
                namespace: r.config.metadata.namespace.clone(),
                attempt: r.config.metadata.attempt,
            }),
            labels: r.config.labels.clone().into_iter().collect(),
            annotations: r.config.annotations.clone().into_iter().collect(),
        }),
        linux: Some(LinuxPodSandboxStats {
            cpu: cpu.map(|c| CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: u64v(c),
                usage_nano_cores: None,
            }),
            memory: mem.map(|(usage, ws)| MemoryUsage {
                timestamp: now,
                working_set_bytes: u64v(ws),
                usage_bytes: u64v(usage),
                ..Default::default()
            }),
            network: None,
            process: None,
            containers,
        }),
        windows: None,
    })
}

/// ListPodSandboxStats with CRI's filter.
pub fn sandboxes(e: &Engine, f: Option<&PodSandboxStatsFilter>) -> CriResult<Vec<PodSandboxStats>> {
    let pods = engine(e.pod_list(&Default::default()))?;
    let mut out = Vec::new();
    for p in pods {
        if let Some(f) = f {
            if (!f.id.is_empty() && !p.record.id.starts_with(&f.id))
                || !crate::labels::select(&f.label_selector, &p.record.config.labels)
            {
                continue;
            }
        }
        if let Ok(s) = sandbox(e, &p.record.id) {
            out.push(s);
        }
    }
    Ok(out)
}
