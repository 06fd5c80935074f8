//! `barge load [-i FILE]`: docker-archive or OCI archive, from a file or stdin.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read from this tar archive instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing but the loaded names.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let config = ctx.config()?;
    let progress = crate::progress::for_terminal(args.quiet);
    let records = match &args.input {
        Some(path) => {
            let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            barge_image::archive::load(
                &store,
                &config,
                BufReader::with_capacity(1 << 20, f),
                progress.as_ref(),
            )
            .with_context(|| format!("loading {}", path.display()))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is a terminal; use -i FILE or a redirection");
            }
            barge_image::archive::load(
                &store,
                &config,
                BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
                progress.as_ref(),
            )
            .context("loading from stdin")?
        }
    };
    progress.finish();
    for rec in records {
        if rec.name.starts_with("<none>") {
            println!("Loaded image ID: {}", rec.config);
        } else {
            println!("Loaded image: {}", super::display_name(&rec.name));
        }
    }
    Ok(())
}
