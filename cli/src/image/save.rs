//! `barge save [-o FILE] [--format docker-archive|oci-archive] IMAGE...`. The file is written
//! to a temporary name and renamed when complete, so a cut leaves no truncated archive.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use barge_image::archive::ArchiveFormat;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive (also readable as an OCI layout, as docker ≥ 25 writes) or oci-archive.
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let format = match args.format.as_str() {
        "docker-archive" | "docker" => ArchiveFormat::DockerArchive,
        "oci-archive" | "oci" => ArchiveFormat::OciArchive,
        other => anyhow::bail!("--format {other:?}: expected docker-archive or oci-archive"),
    };
    let store = ctx.store()?;
    match &args.output {
        Some(path) => {
            let f = barge_util::fs::AtomicFile::create(path, 0o644)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            barge_image::archive::save(&store, &args.images, format, &mut w)?;
            let f = w
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            f.commit(barge_util::fs::Durability::Durable)
                .with_context(|| format!("writing {}", path.display()))
        }
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!(
                    "refusing to write an archive to a terminal; use -o FILE or a redirection"
                );
            }
            let mut w = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            barge_image::archive::save(&store, &args.images, format, &mut w)?;
            w.flush().context("writing to stdout")?;
            Ok(())
        }
    }
}
