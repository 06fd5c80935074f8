//! barge's container engine: containers from images, their metadata, their shims, volumes.
//! A library over one store (podman's model: no daemon needed); the `barge` CLI uses it
//! directly and the API daemon will serve the same library.
#![forbid(unsafe_code)]

pub mod archive;
pub mod boot;
pub mod changes;
pub mod check;
pub mod config;
pub mod container;
pub mod create;
pub mod db;
pub mod disk;
pub mod docker;
pub mod error;
pub mod events;
pub mod exec;
pub mod filters;
pub mod frames;
pub mod health;
pub mod kube;
pub mod list;
pub mod lock;
pub mod logs;
pub mod names;
pub mod network;
pub mod paths;
pub mod pod;
pub mod populate;
pub mod prune;
pub mod pull;
pub mod push;
pub mod registry;
pub mod seccomp;
pub mod spec;
pub mod stats;
pub mod status;
pub mod terminal;
#[cfg(test)]
mod testing;
pub mod top;
pub mod update;
pub mod user;
pub mod validate;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Error, ErrorKind, Result};

use crate::db::Db;
use crate::paths::Paths;

/// Where things are and which helper binaries to use.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// The `barge-shim` binary.
    pub shim: PathBuf,
    /// The `barge-exit` binary, which shims run when their container is finished for good
    /// (network teardown, `--rm` removal); see [`helper_binary`].
    pub exit_helper: PathBuf,
    /// The registry helper (`barge-registry`), run for pulls and login checks.
    pub registry: PathBuf,
    /// A static init for `--init` (docker uses tini).
    pub init: PathBuf,
    /// The configuration directory (passed on to the `barge` commands shims run).
    pub config: PathBuf,
    /// CNI settings.
    pub network: network::settings::Settings,
}

/// A helper binary of barge's (`barge-shim`, `barge-exit`): the path in environment variable
/// `env` if set, else the file `name` next to the current executable (where cargo and the
/// packages install them side by side).
pub fn helper_binary(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .map(|exe| exe.with_file_name(name))
        .unwrap_or_else(|_| PathBuf::from(name))
}

pub struct Engine {
    pub paths: Paths,
    pub images: Arc<barge_image::store::Store>,
    pub db: Db,
    pub opts: EngineOptions,
}

impl Engine {
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        let images = Arc::new(barge_image::store::Store::open(&opts.root)?);
        let db = Db::open(&opts.root.join("barge.db"))?;
        let paths = Paths {
            root: opts.root.clone(),
            runroot: opts.runroot.clone(),
        };
        // Containers (rootfs, config with the environment) and volumes (their data) are
        // the store's like the root is: 0700 even where they existed with another mode.
        for d in [paths.containers(), paths.volumes()] {
            barge_image::store::secure_dir(&d, "create directory")?;
        }
        std::fs::create_dir_all(&paths.runroot).map_err(|e| Error::Io {
            what: "create directory",
            path: paths.runroot.clone(),
            source: e,
        })?;
        Ok(Engine {
            paths,
            images,
            db,
            opts,
        })
    }

    /// The runtime's state store (under the run root).
    pub fn runtime(&self) -> Result<barge_runtime::Store> {
        Ok(barge_runtime::Store::open(&self.paths.runtime_root())?)
    }
}
