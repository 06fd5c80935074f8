//! `barge logs`: the container's log (CRI format, see `barge_shim::logs`) as docker prints it.

use anyhow::{Context, Result};
use barge_shim::logs::{parse_timestamp, read_logs, ReadOptions};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since a timestamp (RFC 3339, unix seconds) or relative (e.g. 42m, 10s).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

/// A point in time: absolute (RFC 3339, unix seconds) or relative to now (`10s`, `42m`, `2h`).
pub fn parse_time(flag: &str, s: &str) -> Result<(i64, u32)> {
    if let Some(t) = parse_timestamp(s) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => 0.0,
    };
    let n: f64 = num.parse().unwrap_or(-1.0);
    if mult == 0.0 || n < 0.0 {
        anyhow::bail!("{flag} {s:?}: expected a timestamp (RFC 3339 or unix seconds) or a duration like 10s, 42m, 2h");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = now.as_secs_f64() - n * mult;
    Ok((t.floor() as i64, ((t - t.floor()) * 1e9) as u32))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let rec = engine.db.find(&args.container)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("--tail {n:?}: expected a number or \"all\""))?,
        ),
    };
    let opts = ReadOptions {
        tail,
        since: args
            .since
            .as_deref()
            .map(|s| parse_time("--since", s))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time("--until", s))
            .transpose()?,
        timestamps: args.timestamps,
        stdout: true,
        stderr: true,
        follow: args.follow,
    };
    let path = engine.paths.log(&rec.id);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut checks = 0u32;
    let mut lost = false;
    let mut done = || {
        // Follow until the container is finished for good (checked every few polls).
        checks += 1;
        if !checks.is_multiple_of(5) {
            return false;
        }
        match engine.db.find(&rec.id) {
            Ok(r) => {
                let st = engine.status(&r);
                if st.shim_lost {
                    // Nothing writes the log any more: following would wait forever.
                    lost = true;
                }
                lost || !st.state.is_active()
            }
            Err(_) => true,
        }
    };
    read_logs(&path, &opts, (&mut out, &mut err), &mut done)
        .with_context(|| format!("read logs of {}", args.container))?;
    if lost && args.follow {
        drop(err);
        anyhow::bail!("{}: {}", args.container, barge_engine::status::SHIM_LOST);
    }
    Ok(0)
}
