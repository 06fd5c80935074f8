//! Image commands, one file each, over `barge_image`.

pub mod history;
pub mod import;
pub mod inspect;
pub mod list;
pub mod load;
pub mod login;
pub mod prune;
pub mod pull;
pub mod push;
pub mod remove;
pub mod save;
pub mod tag;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use barge_image::config::Config;
use barge_image::store::Store;
use clap::Subcommand;

/// What every image command needs: where the store and the configuration are.
pub struct Ctx {
    pub root: PathBuf,
    pub config: PathBuf,
}

impl Ctx {
    pub fn store(&self) -> Result<Arc<Store>> {
        Ok(Arc::new(Store::open(&self.root).with_context(|| {
            format!("opening the store at {}", self.root.display())
        })?))
    }

    pub fn config(&self) -> Result<Config> {
        Ok(Config::load(&self.config)?)
    }

    /// The registry helper and what it works on.
    pub fn helper(&self) -> Result<barge_engine::pull::HelperPaths> {
        Ok(barge_engine::pull::HelperPaths {
            helper: registry_helper()?,
            root: self.root.clone(),
            config: self.config.clone(),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(list::Args),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(remove::Args),
    /// Display detailed information on one or more images.
    Inspect(inspect::Args),
    /// Remove unused images and unreferenced content.
    Prune(prune::Args),
    /// Download an image from a registry.
    Pull(pull::Args),
    /// Load images from a tar archive.
    Load(load::Args),
    /// Save images to a tar archive.
    Save(save::Args),
    /// Create an image from a rootfs tarball.
    Import(import::Args),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(tag::Args),
    /// Show the history of an image (its layers and the instructions that made them).
    History(history::Args),
}

pub fn dispatch(ctx: &Ctx, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Ls(a) => list::run(ctx, a),
        ImageCommand::Rm(a) => remove::run(ctx, a),
        ImageCommand::Inspect(a) => inspect::run(ctx, a),
        ImageCommand::Prune(a) => prune::run(ctx, a),
        ImageCommand::Pull(a) => pull::run(ctx, a),
        ImageCommand::Load(a) => load::run(ctx, a),
        ImageCommand::Save(a) => save::run(ctx, a),
        ImageCommand::Import(a) => import::run(ctx, a),
        ImageCommand::Tag(a) => tag::run(ctx, a),
        ImageCommand::History(a) => history::run(ctx, a),
    }
}

pub use barge_engine::docker::image::display_name;

/// The registry helper: `BARGE_REGISTRY`, else `barge-registry` next to this binary.
pub fn registry_helper() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BARGE_REGISTRY") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locate the barge binary")?;
    Ok(exe.with_file_name("barge-registry"))
}
