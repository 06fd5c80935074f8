//! `barge stats`: CPU, memory and pids of running containers from their cgroups; refreshed
//! every second unless `--no-stream`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use barge_engine::Engine;
use serde_json::json;

use super::{short, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Output format: table (default) or json.
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

struct Sample {
    cpu_ns: u64,
    at: Instant,
}

fn sample(engine: &Engine, id: &str) -> Option<(barge_runtime::cgroups::stats::Stats, Sample)> {
    let store = engine.runtime().ok()?;
    let st = store.load(id).ok()?;
    let s = barge_runtime::cgroups::stats::read(&st.cgroup).ok()?;
    let cpu_ns = s.cpu.as_ref().map(|c| c.usage.total).unwrap_or(0);
    Some((
        s,
        Sample {
            cpu_ns,
            at: Instant::now(),
        },
    ))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut prev: HashMap<String, Sample> = HashMap::new();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    // The first sample only primes CPU usage: wait a moment for a rate.
    let mut first = true;
    loop {
        let recs: Vec<_> = if args.containers.is_empty() {
            engine.list(false)?.into_iter().map(|(r, _)| r).collect()
        } else {
            args.containers
                .iter()
                .map(|c| engine.db.find(c))
                .collect::<Result<_, _>>()?
        };
        if first {
            for r in &recs {
                if let Some((_, s)) = sample(&engine, &r.id) {
                    prev.insert(r.id.clone(), s);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
            first = false;
        }
        let mut table = vec![vec![
            "CONTAINER ID".to_string(),
            "NAME".into(),
            "CPU %".into(),
            "MEM USAGE / LIMIT".into(),
            "MEM %".into(),
            "PIDS".into(),
        ]];
        for r in &recs {
            let Some((s, now)) = sample(&engine, &r.id) else {
                continue;
            };
            let cpu = match prev.get(&r.id) {
                Some(p) if now.at > p.at => {
                    let dt = now.at.duration_since(p.at).as_nanos() as f64;
                    (now.cpu_ns.saturating_sub(p.cpu_ns) as f64 / dt * 100.0).min(100.0 * ncpu)
                }
                _ => 0.0,
            };
            let mem = s.memory.as_ref().map(|m| m.usage.usage).unwrap_or(0);
            let host_mem = host_memory();
            let limit = s
                .memory
                .as_ref()
                .map(|m| m.usage.limit)
                .filter(|l| *l > 0 && *l < host_mem)
                .unwrap_or(host_mem);
            let pids = s.pids.as_ref().map(|p| p.current).unwrap_or(0);
            let mem_pct = if limit > 0 {
                mem as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            if args.format.as_deref() == Some("json") {
                println!(
                    "{}",
                    json!({"ID": short(&r.id), "Name": r.name, "CPUPerc": format!("{cpu:.2}%"),
                    "MemUsage": format!("{} / {}", binary_size(mem), binary_size(limit)),
                    "MemPerc": format!("{mem_pct:.2}%"), "PIDs": pids.to_string()})
                );
            }
            table.push(vec![
                short(&r.id).to_string(),
                r.name.clone(),
                format!("{cpu:.2}%"),
                format!("{} / {}", binary_size(mem), binary_size(limit)),
                format!("{mem_pct:.2}%"),
                pids.to_string(),
            ]);
            prev.insert(r.id.clone(), now);
        }
        if args.format.as_deref() != Some("json") {
            if !args.no_stream {
                print!("\x1b[2J\x1b[H");
            }
            crate::image::list::print_table(&table);
        }
        if args.no_stream {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// docker's memory sizes in `stats`: binary units, four significant digits (Go's
/// `units.BytesSize`: 64MiB, 1.5GiB, 372.7KiB).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_sizes_like_docker() {
        assert_eq!(super::binary_size(64 << 20), "64MiB");
        assert_eq!(super::binary_size(381_644), "372.7KiB");
        assert_eq!(super::binary_size(512), "512B");
        assert_eq!(super::binary_size(3 << 29), "1.5GiB");
    }
}
