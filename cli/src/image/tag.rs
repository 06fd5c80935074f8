//! `barge tag SOURCE TARGET`

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// SOURCE_IMAGE[:TAG] or image ID
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    ctx.store()?.tag(&args.source, &args.target)?;
    Ok(())
}
