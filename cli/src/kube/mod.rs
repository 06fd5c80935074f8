//! `barge kube play|down|generate`: Kubernetes YAML with podman's habits, over
//! `barge_engine::kube`.

pub mod down;
pub mod generate;
pub mod play;

use std::io::Read;

use anyhow::{Context, Result};

use crate::container::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum KubeCommand {
    /// Run Pods, Deployments, ConfigMaps, Secrets and PersistentVolumeClaims from YAML.
    Play(play::Args),
    /// Remove what `kube play` made from the same YAML.
    #[command(alias = "teardown")]
    Down(down::Args),
    /// Write a pod as Kubernetes Pod YAML.
    Generate(generate::Args),
}

pub fn run(ctx: &Ctx, c: KubeCommand) -> Result<i32> {
    match c {
        KubeCommand::Play(a) => play::run(ctx, a),
        KubeCommand::Down(a) => down::run(ctx, a),
        KubeCommand::Generate(a) => generate::run(ctx, a),
    }
}

/// The YAML of FILE, or of stdin for `-`.
pub fn read_yaml(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read the YAML from stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("read {file}"))
    }
}
