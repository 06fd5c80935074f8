//! `barge kube play [--replace] FILE|-`.

use anyhow::Result;
use barge_engine::kube::KubePlayOptions;

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove what an earlier play of this YAML made first.
    #[arg(long)]
    pub replace: bool,
    /// Start the pods (--start=false: only create them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub start: bool,
    /// The YAML file, or - for stdin.
    pub file: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let yaml = super::read_yaml(&args.file)?;
    let engine = ctx.engine()?;
    let report = engine.kube_play(
        &yaml,
        &KubePlayOptions {
            replace: args.replace,
            no_start: !args.start,
        },
    )?;
    for w in &report.warnings {
        eprintln!("barge: warning: {w}");
    }
    if !report.volumes.is_empty() {
        println!("Volumes:");
        for v in &report.volumes {
            println!("{v}");
        }
    }
    for p in &report.pods {
        println!("Pod:");
        println!("{}", p.id);
        println!("Containers:");
        for c in &p.containers {
            println!("{}", c.id);
        }
        println!();
    }
    Ok(0)
}
