//! `barge image prune [-a] [-f]`: remove untagged images (with `-a`, every image no container
//! uses), then everything no image or container reaches.

use std::io::{BufRead, IsTerminal};

use anyhow::Result;
use barge_image::store::Removed;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove all images not used by a container, not just untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Don't ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        if !confirm(&format!("This will remove {what}."))? {
            return Ok(());
        }
    }
    let store = ctx.store()?;
    let pruned = barge_engine::prune::prune_images(&store, args.all)?;
    let (removed, report) = (pruned.removed, pruned.gc);
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in removed {
            match r {
                Removed::Untagged(n) => println!("untagged: {}", super::display_name(&n)),
                Removed::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {} ({} blobs, {} snapshots, {} partial downloads)",
        crate::format::size(report.bytes),
        report.blobs,
        report.snapshots,
        report.ingests
    );
    Ok(())
}

/// Ask "Are you sure?" on stdin; a non-terminal stdin must answer too (else use --force).
pub fn confirm(warning: &str) -> Result<bool> {
    eprint!("WARNING! {warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    let stdin = std::io::stdin();
    if stdin.lock().read_line(&mut line)? == 0 && !stdin.is_terminal() {
        anyhow::bail!("no confirmation on stdin; use --force");
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
