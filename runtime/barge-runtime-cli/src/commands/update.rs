use std::io::Read;
use std::path::PathBuf;

use barge_runtime::{update, Error, Result, Store};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON file with the linux.resources to apply ("-" reads stdin); flags override it.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in µs.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in µs (-1 for unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst in µs.
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// Realtime period in µs.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in µs.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long)]
    pub cpu_idle: Option<i64>,
    /// CPUs allowed (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (deprecated, ignored by the kernel).
    #[arg(long, allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit.
    #[arg(long, allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit, e.g. 256m, 1g or -1 for unlimited.
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit, or -1 for unlimited swap.
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1 for unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(Error::Unsupported(
            "--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported".into(),
        ));
    }
    let mut doc = match &a.resources {
        Some(p) => read_resources(p)?,
        None => Value::Object(Map::new()),
    };
    overlay_flags(&mut doc, a)?;
    let resources: LinuxResources = barge_runtime::spec::parse_json(&doc.to_string())
        .map_err(|e| Error::InvalidArgument(format!("resources: {e}")))?;
    update::update(store, &a.id, &resources)?;
    Ok(0)
}

fn read_resources(p: &PathBuf) -> Result<Value> {
    let mut text = String::new();
    let read = if p.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Error::InvalidArgument(format!("read resources {}: {e}", p.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidArgument(format!("parse resources {}: {e}", p.display())))?;
    if !v.is_object() {
        return Err(Error::InvalidArgument(format!(
            "resources {}: expected a JSON object (linux.resources)",
            p.display()
        )));
    }
    Ok(v)
}

/// Put each given flag at its place in the linux.resources document.
fn overlay_flags(doc: &mut Value, a: &Args) -> Result<()> {
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref().map(|s| parse_size(flag, s)).transpose()
    };
    let fields: [(&str, &str, Option<Value>); 16] = [
        ("blockIO", "weight", a.blkio_weight.map(|v| json!(v))),
        ("cpu", "period", a.cpu_period.map(|v| json!(v))),
        ("cpu", "quota", a.cpu_quota.map(|v| json!(v))),
        ("cpu", "burst", a.cpu_burst.map(|v| json!(v))),
        ("cpu", "shares", a.cpu_share.map(|v| json!(v))),
        ("cpu", "realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("cpu", "realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("cpu", "idle", a.cpu_idle.map(|v| json!(v))),
        ("cpu", "cpus", a.cpuset_cpus.as_ref().map(|v| json!(v))),
        ("cpu", "mems", a.cpuset_mems.as_ref().map(|v| json!(v))),
        (
            "memory",
            "kernel",
            size("--kernel-memory", &a.kernel_memory)?.map(|v| json!(v)),
        ),
        (
            "memory",
            "kernelTCP",
            size("--kernel-memory-tcp", &a.kernel_memory_tcp)?.map(|v| json!(v)),
        ),
        (
            "memory",
            "limit",
            size("--memory", &a.memory)?.map(|v| json!(v)),
        ),
        (
            "memory",
            "reservation",
            size("--memory-reservation", &a.memory_reservation)?.map(|v| json!(v)),
        ),
        (
            "memory",
            "swap",
            size("--memory-swap", &a.memory_swap)?.map(|v| json!(v)),
        ),
        ("pids", "limit", a.pids_limit.map(|v| json!(v))),
    ];
    for (section, key, value) in fields {
        let Some(value) = value else { continue };
        let Some(obj) = doc.as_object_mut() else {
            continue;
        };
        let sec = obj
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        match sec.as_object_mut() {
            Some(s) => {
                s.insert(key.to_string(), value);
            }
            None => {
                return Err(Error::InvalidArgument(format!(
                    "resources: {section} must be an object"
                )))
            }
        }
    }
    Ok(())
}

/// A byte size as docker and runc take it: `1024`, `64k`, `256m`, `1g`, `2GiB`, or -1.
fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let bad = || {
        Error::InvalidArgument(format!(
            "{flag} {s:?}: not a size (e.g. 1048576, 512k, 256m, 1g, or -1 for unlimited)"
        ))
    };
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let digits = t.len()
        - t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .len();
    let (num, unit) = t.split_at(digits);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let mult: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(bad()),
    };
    let v = num * mult;
    if !(0.0..9.2e18).contains(&v) {
        return Err(bad());
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("m", "1024").unwrap(), 1024);
        assert_eq!(parse_size("m", "64k").unwrap(), 65536);
        assert_eq!(parse_size("m", "256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("m", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("m", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("m", "-1").unwrap(), -1);
        assert!(parse_size("m", "12x").is_err());
        assert!(parse_size("m", "-5").is_err());
        assert!(parse_size("m", "99999999999p").is_err());
    }
}
