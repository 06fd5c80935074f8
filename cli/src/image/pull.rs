//! `barge pull [--platform P] [--insecure] NAME[:TAG|@DIGEST]`

use anyhow::{bail, Result};
use barge_image::platform::Platform;
use barge_image::reference::ImageRef;

use crate::registry::proto::{Reply, Request};

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
    // Bad names and platforms are refused here, before the helper starts.
    ImageRef::parse(&args.image)?;
    if let Some(p) = &args.platform {
        Platform::parse(p)?;
    }
    let reply = crate::registry::call(&Request::Pull {
        root: ctx.root.clone(),
        config: ctx.config.clone(),
        image: args.image,
        platform: args.platform,
        insecure: args.insecure,
        quiet: args.quiet,
    })?;
    let Reply::Pulled {
        digest,
        name,
        up_to_date,
    } = reply
    else {
        bail!("the registry helper answered a pull with {reply:?}");
    };
    if !args.quiet {
        let say = |line: String| {
            if to_stderr {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        };
        say(format!("Digest: {digest}"));
        let status = if up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        say(format!("Status: {status} {}", super::display_name(&name)));
        say(name);
    }
    Ok(())
}
