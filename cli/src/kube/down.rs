//! `barge kube down [--force] FILE|-`.

use anyhow::Result;
use barge_engine::kube::KubeDownOptions;

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove the named volumes play created for the YAML's PersistentVolumeClaims
    /// (kept by default, like podman).
    #[arg(long)]
    pub force: bool,
    /// The YAML file, or - for stdin.
    pub file: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let yaml = super::read_yaml(&args.file)?;
    let engine = ctx.engine()?;
    let report = engine.kube_down(
        &yaml,
        &KubeDownOptions {
            volumes: args.force,
        },
    )?;
    if !report.pods.is_empty() {
        println!("Pods removed:");
        for p in &report.pods {
            println!("{p}");
        }
    }
    if !report.volumes.is_empty() {
        println!("Volumes removed:");
        for v in &report.volumes {
            println!("{v}");
        }
    }
    Ok(0)
}
