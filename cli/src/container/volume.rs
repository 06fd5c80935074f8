//! `barge volume create|ls|rm|inspect|prune`.

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        /// Set metadata for a volume (KEY=VALUE).
        #[arg(short, long = "label")]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls {
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused ones with -a).
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: VolumeCommand) -> Result<i32> {
    let engine = ctx.engine()?;
    match cmd {
        VolumeCommand::Create { label, name } => {
            let labels = barge_engine::config::labels::parse_labels("--label", &label)?;
            let anonymous = name.is_none();
            let name = match name {
                Some(n) => n,
                None => barge_engine::names::new_id()?,
            };
            let v = engine.volume_create(&name, labels, anonymous)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet } => {
            let vols = engine.db.volumes()?;
            if quiet {
                for v in vols {
                    println!("{}", v.name);
                }
            } else {
                let mut t = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                t.extend(vols.into_iter().map(|v| vec!["local".to_string(), v.name]));
                crate::image::list::print_table(&t);
            }
        }
        VolumeCommand::Rm { names, .. } => {
            let mut code = 0;
            for n in names {
                match engine.volume_remove(&n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("barge: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for n in names {
                let v = engine.db.volume(&n)?;
                out.push(barge_engine::docker::volume::volume(&engine, &v));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Prune { all, .. } => {
            let removed = engine.prune_volumes(all)?.deleted;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for n in &removed {
                    println!("{n}");
                }
            }
            println!("Total reclaimed volumes: {}", removed.len());
        }
    }
    Ok(0)
}
