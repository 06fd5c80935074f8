//! `barge image inspect IMAGE...`: a JSON array shaped like docker's.

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        let rec = match store.resolve(name) {
            Ok(r) => r,
            Err(e) => {
                missing.push(format!("{name}: {e}"));
                continue;
            }
        };
        out.push(barge_engine::docker::image::inspect(&store, &rec)?);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("; "));
    }
    Ok(())
}
