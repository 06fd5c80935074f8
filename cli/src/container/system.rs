//! `barge system df|prune|check|boot`.

use anyhow::Result;
use clap::Subcommand;

use super::{short, Ctx};
use crate::format;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage of images, containers and volumes.
    Df,
    /// Remove stopped containers and dangling images (and unused volumes with --volumes).
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Also prune anonymous volumes.
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Find and repair what crashed barge processes left: half-made or half-removed
    /// containers, dead shims, orphan snapshots and runtime state.
    Check {
        /// Only report, change nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Start the containers whose restart policy asks for it (run once at host boot).
    Boot,
}

pub fn run(ctx: &Ctx, cmd: SystemCommand) -> Result<i32> {
    let engine = ctx.engine()?;
    match cmd {
        SystemCommand::Df => {
            let du = engine.disk_usage()?;
            let pct = |r: u64, t: u64| match (r * 100).checked_div(t) {
                Some(p) => format!("{} ({p}%)", format::size(r)),
                None => "0B".to_string(),
            };
            let mut table = vec![vec![
                "TYPE".to_string(),
                "TOTAL".into(),
                "ACTIVE".into(),
                "SIZE".into(),
                "RECLAIMABLE".into(),
            ]];
            for (kind, row) in [
                ("Images", du.images_row()),
                ("Containers", du.containers_row()),
                ("Local Volumes", du.volumes_row()),
            ] {
                table.push(vec![
                    kind.into(),
                    row.total.to_string(),
                    row.active.to_string(),
                    format::size(row.size),
                    pct(row.reclaimable, row.size),
                ]);
            }
            crate::image::list::print_table(&table);
        }
        SystemCommand::Prune {
            all,
            volumes,
            force,
        } => {
            if !force
                && !crate::image::prune::confirm(
                    "This will remove all stopped containers and dangling images.",
                )?
            {
                return Ok(0);
            }
            let removed = engine.prune_containers()?.deleted;
            if !removed.is_empty() {
                println!("Deleted Containers:");
                for id in &removed {
                    println!("{id}");
                }
            }
            if volumes {
                let v = engine.prune_volumes(false)?.deleted;
                if !v.is_empty() {
                    println!("Deleted Volumes:");
                    for n in v {
                        println!("{n}");
                    }
                }
            }
            crate::image::prune::run(&ctx.image, crate::image::prune::Args { all, force: true })?;
        }
        SystemCommand::Check { dry_run } => {
            let found = engine.check(!dry_run)?;
            for f in &found {
                println!("{}{}", f.what, if f.repaired { ": repaired" } else { "" });
            }
            if found.is_empty() {
                println!("No problems found");
            }
        }
        SystemCommand::Boot => {
            let mut code = 0;
            for b in engine.boot()? {
                match b.result {
                    Ok(()) => println!("started {} ({})", b.name, short(&b.id)),
                    Err(e) => {
                        eprintln!("barge: start {} ({}): {e}", b.name, short(&b.id));
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
    }
    Ok(0)
}
