//! `barge import [-c CHANGE]... [-m MSG] [--platform P] FILE|- NAME`: a one-layer image from a
//! rootfs tarball (plain, gzip or zstd).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use barge_image::archive::ImportOptions;
use barge_image::platform::Platform;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message (history comment).
    #[arg(short, long)]
    pub message: Option<String>,
    /// The image's platform (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The rootfs tarball, or - for stdin.
    pub file: PathBuf,
    /// REPOSITORY[:TAG]
    pub name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let config = ctx.config()?;
    let opts = ImportOptions {
        changes: args.change,
        message: args.message,
        platform: match &args.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        },
    };
    let rec = if args.file.as_os_str() == "-" {
        barge_image::archive::import(
            &store,
            &config,
            BufReader::new(std::io::stdin().lock()),
            &args.name,
            &opts,
        )?
    } else {
        let f =
            File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        barge_image::archive::import(
            &store,
            &config,
            BufReader::with_capacity(1 << 20, f),
            &args.name,
            &opts,
        )
        .with_context(|| format!("importing {}", args.file.display()))?
    };
    println!("{}", rec.config);
    Ok(())
}
