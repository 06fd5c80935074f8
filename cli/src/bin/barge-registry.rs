//! `barge-registry [--parent PID]`: barge's registry helper (pull, login check). Reads one
//! request as JSON on stdin, answers one reply as JSON on stdout; progress goes to stderr.
//! `barge` runs it for `pull`, `login` and the implicit pull of `run`/`create` (see
//! cli/src/registry/mod.rs).
#![deny(unsafe_code)]

#[allow(dead_code)]
#[path = "../format.rs"]
mod format;
#[path = "../progress.rs"]
mod progress;
#[path = "../registry/proto.rs"]
mod proto;
#[allow(unsafe_code)] // the crate's one syscall-facing module
#[path = "../sys.rs"]
mod sys;

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use barge_image::config::Config;
use barge_image::platform::Platform;
use barge_image::pull::{pull, PullOptions};
use barge_image::reference::ImageRef;
use barge_image::store::Store;

use proto::{Reply, Request};

/// A small runtime: one thread for the network (a few streams), the unpacking on tokio's
/// blocking threads.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(req: Request) -> Result<Reply> {
    match req {
        Request::Pull {
            root,
            config,
            image,
            platform,
            insecure,
            quiet,
        } => {
            let reference = ImageRef::parse(&image)?;
            let opts = PullOptions {
                platform: match &platform {
                    Some(p) => Platform::parse(p)?,
                    None => Platform::host(),
                },
                insecure,
                credentials: None,
            };
            let store = Arc::new(
                Store::open(&root)
                    .with_context(|| format!("opening the store at {}", root.display()))?,
            );
            let config = Config::load(&config)?;
            let progress = progress::for_terminal(quiet);
            let had = store.db.image(&reference.canonical())?;
            let rec =
                runtime()?.block_on(pull(store, &config, &reference, &opts, progress.clone()))?;
            progress.finish();
            Ok(Reply::Pulled {
                digest: rec.target.to_string(),
                up_to_date: had.is_some_and(|old| old.config == rec.config),
                name: rec.name,
            })
        }
        Request::Login {
            config,
            server,
            user,
            password,
            insecure,
        } => {
            let config = Config::load(&config)?;
            runtime()?
                .block_on(barge_image::login::check(
                    &config, &server, &user, &password, insecure,
                ))
                .with_context(|| format!("login to {server}"))?;
            Ok(Reply::LoggedIn)
        }
    }
}

/// The helper dies with barge: a `barge pull` killed (SIGKILL, or a crash) must stop the
/// pull as it did when the pull ran inside barge, not leave it running on its own. barge
/// passes its pid (`--parent PID`): if barge is already gone when the death signal is armed
/// (killed right after starting us), we stop here.
fn die_with_parent() {
    let mut args = std::env::args().skip(1);
    let parent = match (args.next().as_deref(), args.next()) {
        (Some("--parent"), Some(pid)) => pid.parse::<i32>().ok(),
        _ => None,
    };
    let armed = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_ok();
    if !armed || parent.is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
        std::process::exit(1);
    }
}

fn main() {
    sys::tune_malloc();
    die_with_parent();
    let mut body = Vec::new();
    let reply = match std::io::stdin().read_to_end(&mut body) {
        Err(e) => Reply::Failed {
            error: format!("reading the request on stdin: {e}"),
        },
        Ok(_) => match serde_json::from_slice::<Request>(&body) {
            Err(e) => Reply::Failed {
                error: format!("decoding the request on stdin: {e}"),
            },
            Ok(req) => serve(req).unwrap_or_else(|e| Reply::Failed {
                error: format::error_chain(&e),
            }),
        },
    };
    let ok = !matches!(reply, Reply::Failed { .. });
    let written = serde_json::to_vec(&reply)
        .map_err(std::io::Error::other)
        .and_then(|b| std::io::stdout().lock().write_all(&b));
    if let Err(e) = written {
        eprintln!("barge-registry: writing the reply: {e}");
        std::process::exit(2);
    }
    std::process::exit(if ok { 0 } else { 1 });
}
