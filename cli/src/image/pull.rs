//! `barge pull [--platform P] [--insecure] NAME[:TAG|@DIGEST]`

use anyhow::Result;
use barge_image::platform::Platform;
use barge_image::pull::{pull, PullOptions};
use barge_image::reference::ImageRef;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Platform to pull from a multi-arch image (os/arch[/variant], e.g. linux/arm/v7).
    #[arg(long)]
    pub platform: Option<String>,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub image: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    pull_to(ctx, args, false)
}

/// Pull; the summary goes to stderr with `to_stderr` (`run` keeps stdout for the container).
pub fn pull_to(ctx: &Ctx, args: Args, to_stderr: bool) -> Result<()> {
    let reference = ImageRef::parse(&args.image)?;
    let opts = PullOptions {
        platform: match &args.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        },
        insecure: args.insecure,
    };
    let store = ctx.store()?;
    let config = ctx.config()?;
    let progress = crate::progress::for_terminal(args.quiet);
    let had = store.db.image(&reference.canonical())?;
    let rec =
        super::runtime()?.block_on(pull(store, &config, &reference, &opts, progress.clone()))?;
    progress.finish();
    if !args.quiet {
        let say = |line: String| {
            if to_stderr {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        };
        say(format!("Digest: {}", rec.target));
        let status = match had {
            Some(old) if old.config == rec.config => "Image is up to date for",
            _ => "Downloaded newer image for",
        };
        say(format!(
            "Status: {status} {}",
            super::display_name(&rec.name)
        ));
        say(rec.name.to_string());
    }
    Ok(())
}
