//! `barge pull [--platform P] [--insecure] NAME[:TAG|@DIGEST]`

use anyhow::Result;
use barge_engine::pull::{PullOptions, PullProgress};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Platform to pull from a multi-arch image (os/arch[/variant], e.g. linux/arm/v7).
    #[arg(long)]
    pub platform: Option<String>,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub image: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    pull_to(ctx, args, false)
}

/// Pull; the summary goes to stderr with `to_stderr` (`run` keeps stdout for the container).
pub fn pull_to(ctx: &Ctx, args: Args, to_stderr: bool) -> Result<()> {
    let mut opts = PullOptions {
        platform: args.platform,
        insecure: args.insecure,
        auth: None,
        progress: if args.quiet {
            PullProgress::Quiet
        } else {
            PullProgress::Terminal
        },
    };
    let pulled = barge_engine::pull::pull(&ctx.helper()?, &args.image, &mut opts)?;
    if !args.quiet {
        let say = |line: String| {
            if to_stderr {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        };
        say(format!("Digest: {}", pulled.digest));
        say(format!("Status: {}", pulled.status()));
        say(pulled.name);
    }
    Ok(())
}
