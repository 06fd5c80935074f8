//! `barge stats`: CPU, memory and pids of running containers (sampled by
//! `Engine::stats_sample`); refreshed every second unless `--no-stream`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use barge_engine::stats::{cpu_percent, StatsSample};
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

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut prev: HashMap<String, StatsSample> = HashMap::new();
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
                if let Ok(s) = engine.stats_sample(&r.id) {
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
            // A container that stopped meanwhile has no row.
            let Ok(now) = engine.stats_sample(&r.id) else {
                continue;
            };
            let cpu = prev.get(&r.id).map_or(0.0, |p| cpu_percent(p, &now));
            let mem = now.memory_without_cache();
            let limit = now.memory_limit;
            let mem_pct = now.memory_percent();
            let pids = now.pids_current;
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
