//! `barge-exit --root R --runroot RR --config C [--rm] ID`: what a shim runs when its
//! container is finished for good. Tears the container's network down (podman's `container
//! cleanup`); with `--rm`, removes the container and its anonymous volumes (a `destroy`
//! event). It is the engine's own helper, so the shim never runs the CLI.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use barge_engine::{helper_binary, Engine, EngineOptions};

struct Args {
    root: PathBuf,
    runroot: PathBuf,
    config: PathBuf,
    rm: bool,
    id: String,
}

const USAGE: &str = "usage: barge-exit --root ROOT --runroot RUNROOT --config DIR [--rm] ID";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut root, mut runroot, mut config, mut rm, mut id) = (None, None, None, false, None);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match a.as_str() {
            "--root" => root = Some(value("--root")?),
            "--runroot" => runroot = Some(value("--runroot")?),
            "--config" => config = Some(value("--config")?),
            "--rm" => rm = true,
            s if s.starts_with('-') => return Err(format!("unknown flag {s:?}")),
            s if id.is_none() => id = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        runroot: runroot.ok_or("--runroot is required")?,
        config: config.ok_or("--config is required")?,
        rm,
        id: id.ok_or("the container ID is required")?,
    })
}

fn run(a: Args) -> barge_engine::Result<()> {
    let engine = Engine::open(EngineOptions {
        network: barge_engine::network::settings::Settings::load(&a.config)?,
        root: a.root,
        runroot: a.runroot,
        shim: helper_binary("barge-shim", "BARGE_SHIM"),
        exit_helper: helper_binary("barge-exit", "BARGE_EXIT"),
        registry: helper_binary("barge-registry", "BARGE_REGISTRY"),
        init: std::env::var_os("BARGE_INIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/tini-static")),
        config: a.config,
    })?;
    if a.rm {
        engine.remove(&a.id, true, true).map(drop)
    } else {
        engine.cleanup(&a.id)
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("barge-exit: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let id = args.id.clone();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("barge-exit: container {id}: {e}");
            ExitCode::FAILURE
        }
    }
}
