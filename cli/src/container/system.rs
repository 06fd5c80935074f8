//! `barge system df|prune|check|boot`.

use std::path::Path;

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

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn run(ctx: &Ctx, cmd: SystemCommand) -> Result<i32> {
    let engine = ctx.engine()?;
    match cmd {
        SystemCommand::Df => {
            let images = engine.images.db.images()?;
            let mut ids: Vec<_> = images.iter().map(|i| i.config.clone()).collect();
            ids.sort();
            ids.dedup();
            let containers = engine.list(true)?;
            let used: std::collections::HashSet<&str> = containers
                .iter()
                .map(|(r, _)| r.config.image_id.as_str())
                .collect();
            let mut img_size = 0;
            let mut img_unused = 0;
            for id in &ids {
                let Some(rec) = images.iter().find(|i| &i.config == id) else {
                    continue;
                };
                let s = engine
                    .images
                    .image(rec)
                    .and_then(|img| engine.images.size(&img))
                    .unwrap_or(0);
                img_size += s;
                if !used.contains(id.to_string().as_str()) {
                    img_unused += s;
                }
            }
            let mut ctr_size = 0;
            let mut ctr_reclaim = 0;
            let mut active = 0;
            for (rec, st) in &containers {
                let s = engine
                    .images
                    .snapshots
                    .get(&rec.id)
                    .map(|s| dir_size(&engine.images.snapshots.fs_dir(s.id)))
                    .unwrap_or(0);
                ctr_size += s;
                if st.state.is_active() {
                    active += 1;
                } else {
                    ctr_reclaim += s;
                }
            }
            let vols = engine.db.volumes()?;
            let mut vol_size = 0;
            let mut vol_reclaim = 0;
            let mut vol_active = 0;
            for v in &vols {
                let s = dir_size(&engine.volume_path(&v.name));
                vol_size += s;
                if engine.volume_users(&v.name)?.is_empty() {
                    vol_reclaim += s;
                } else {
                    vol_active += 1;
                }
            }
            let pct = |r: u64, t: u64| match (r * 100).checked_div(t) {
                Some(p) => format!("{} ({p}%)", format::size(r)),
                None => "0B".to_string(),
            };
            let table = vec![
                vec![
                    "TYPE".to_string(),
                    "TOTAL".into(),
                    "ACTIVE".into(),
                    "SIZE".into(),
                    "RECLAIMABLE".into(),
                ],
                vec![
                    "Images".into(),
                    ids.len().to_string(),
                    ids.iter()
                        .filter(|i| used.contains(i.to_string().as_str()))
                        .count()
                        .to_string(),
                    format::size(img_size),
                    pct(img_unused, img_size),
                ],
                vec![
                    "Containers".into(),
                    containers.len().to_string(),
                    active.to_string(),
                    format::size(ctr_size),
                    pct(ctr_reclaim, ctr_size),
                ],
                vec![
                    "Local Volumes".into(),
                    vols.len().to_string(),
                    vol_active.to_string(),
                    format::size(vol_size),
                    pct(vol_reclaim, vol_size),
                ],
            ];
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
            let mut removed = Vec::new();
            for (rec, st) in engine.list(true)? {
                if !st.state.is_active() {
                    engine.remove(&rec.id, false, false)?;
                    removed.push(rec.id);
                }
            }
            if !removed.is_empty() {
                println!("Deleted Containers:");
                for id in &removed {
                    println!("{id}");
                }
            }
            if volumes {
                let v = engine.volume_prune(false)?;
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
