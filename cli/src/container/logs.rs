//! `barge logs`: the container's log as docker prints it (read by `barge_engine::logs`).

use anyhow::Result;
use barge_engine::logs::{parse_tail, parse_time, LogOptions};

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

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let opts = LogOptions {
        tail: parse_tail("--tail", &args.tail)?,
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
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match engine.logs_to(&args.container, &opts, (&mut out, &mut err)) {
        Ok(()) => Ok(0),
        Err(e @ barge_engine::Error::ShimLost { .. }) => {
            drop(err);
            anyhow::bail!("{}: {e}", args.container)
        }
        Err(e @ barge_engine::Error::Io { .. }) => {
            Err(anyhow::Error::new(e).context(format!("read logs of {}", args.container)))
        }
        Err(e) => Err(e.into()),
    }
}
