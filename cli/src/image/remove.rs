//! `barge rmi [-f] IMAGE...`: docker's Untagged/Deleted lines; every image is tried, the exit
//! status is non-zero if any failed.

use anyhow::Result;
use barge_image::store::Removed;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the image even if it has several names or a container uses it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let mut failed = 0;
    for name in &args.images {
        match store.remove(name, args.force) {
            Ok(done) => {
                for r in done {
                    match r {
                        Removed::Untagged(n) => println!("Untagged: {}", super::display_name(&n)),
                        Removed::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("barge: removing image {name}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} image(s) could not be removed",
            args.images.len()
        );
    }
    Ok(())
}
