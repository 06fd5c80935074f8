//! `barge build [-t NAME]… [-f Dockerfile] [--build-arg K=V]… [--target STAGE] [--platform P]
//! [--no-cache] [--pull] [--label k=v]… [--iidfile F] [--progress plain|tty] CONTEXT|-`:
//! an image from a Dockerfile, built with barge's own engine (see `barge_build::builder`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use barge_build::builder::progress::{Quiet, Sink, Terminal};
use barge_build::builder::{self, BuildOptions, Progress};
use barge_build::context::{BuildContext, TarLimits};

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name and optionally a tag (name:tag); repeatable.
    #[arg(short, long = "tag")]
    pub tag: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short, long = "file")]
    pub file: Option<PathBuf>,
    /// A build-time variable (K=V, or K to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long)]
    pub target: Option<String>,
    /// The platform to build for (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull the base images.
    #[arg(long)]
    pub pull: bool,
    /// Set a label on the image (k=v); repeatable.
    #[arg(long)]
    pub label: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Progress output: plain or tty (default: tty on a terminal).
    #[arg(long)]
    pub progress: Option<String>,
    /// Only print the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context: a directory, or - for a tar on stdin.
    pub context: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut build_args = BTreeMap::new();
    for a in &args.build_arg {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut labels = Vec::new();
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.push((k.to_string(), v.to_string()));
    }
    let progress = match args.progress.as_deref() {
        None | Some("auto") => {
            if nix::unistd::isatty(std::io::stderr()).unwrap_or(false) {
                Progress::Tty
            } else {
                Progress::Plain
            }
        }
        Some("plain") => Progress::Plain,
        Some("tty") => Progress::Tty,
        Some(other) => bail!("--progress {other}: use plain or tty"),
    };
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.trim()
                .parse::<i64>()
                .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={v:?}: not a number of seconds"))?,
        ),
        _ => None,
    };
    // The context: a directory, or a tar on stdin unpacked (hostile entries refused) into a
    // private directory that goes when the build ends.
    let bctx = if args.context == "-" {
        BuildContext::from_tar(std::io::stdin().lock(), &TarLimits::default())
            .map_err(|e| anyhow!("the build context on stdin: {e}"))?
    } else {
        BuildContext::from_dir(std::path::Path::new(&args.context))
            .map_err(|e| anyhow!("build context {}: {e}", args.context))?
    };
    let context_dir = bctx.root().to_path_buf();
    let dockerfile = match &args.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("read the Dockerfile from stdin")?;
            s
        }
        Some(f) => {
            let path = if f.is_absolute() || args.context != "-" {
                f.clone()
            } else {
                context_dir.join(f)
            };
            std::fs::read_to_string(&path)
                .with_context(|| format!("read Dockerfile {}", path.display()))?
        }
        None => {
            let path = context_dir.join("Dockerfile");
            std::fs::read_to_string(&path)
                .with_context(|| format!("read Dockerfile {}", path.display()))?
        }
    };
    let engine = ctx.engine()?;
    let opts = BuildOptions {
        tags: args.tag.clone(),
        build_args,
        target: args.target.clone(),
        platform: args.platform.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        labels,
        source_date_epoch,
        // The stored logins (barge login) are used for base images.
        registry_auth: Vec::new(),
    };
    let mut quiet = Quiet;
    let mut terminal = Terminal::new(std::io::stderr(), progress);
    let sink: &mut dyn Sink = if args.quiet {
        &mut quiet
    } else {
        &mut terminal
    };
    let built = builder::from_context::build_from_context(&engine, &bctx, &dockerfile, &opts, sink);
    let built = built.map_err(|e| anyhow!("{e}"))?;
    if let Some(f) = &args.iidfile {
        barge_util::fs::write_atomic(
            f,
            built.id.to_string().as_bytes(),
            0o644,
            barge_util::fs::Durability::Durable,
        )
        .with_context(|| format!("write --iidfile {}", f.display()))?;
    }
    if !args.quiet {
        for t in &args.tag {
            eprintln!("naming to {t}");
        }
    }
    println!("{}", built.id);
    Ok(0)
}
