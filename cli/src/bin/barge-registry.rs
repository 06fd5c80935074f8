//! `barge-registry [--parent PID]`: barge's registry helper (pull, push, login check). Reads one
//! request as JSON on stdin, answers one reply as JSON on stdout; progress goes to stderr.
//! `barge` runs it for `pull`, `push`, `login` and the implicit pull of `run`/`create` (see
//! barge_engine::registry).
#![deny(unsafe_code)]

#[allow(dead_code)]
#[path = "../format.rs"]
mod format;
#[path = "../progress.rs"]
mod progress;
#[allow(unsafe_code)] // the crate's one syscall-facing module
#[path = "../sys.rs"]
mod sys;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use barge_engine::registry::proto::{PullEvent, Reply, Request};
use barge_image::config::Config;
use barge_image::platform::Platform;
use barge_image::progress::{Event, Progress};
use barge_image::pull::{pull, PullOptions};
use barge_image::push::{push, PushOptions};
use barge_image::reference::ImageRef;
use barge_image::store::Store;

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
            events,
            auth,
        } => {
            let reference = ImageRef::parse(&image)?;
            let opts = PullOptions {
                platform: match &platform {
                    Some(p) => Platform::parse(p)?,
                    None => Platform::host(),
                },
                insecure,
            };
            let store = Arc::new(
                Store::open(&root)
                    .with_context(|| format!("opening the store at {}", root.display()))?,
            );
            let mut config = Config::load(&config)?;
            if let Some(a) = auth {
                let server = if a.server.is_empty() {
                    reference.registry().to_string()
                } else {
                    a.server
                };
                config
                    .given_credentials
                    .insert(server, (a.username, a.password));
            }
            let had = store.db.image(&reference.canonical())?;
            let rec = if events {
                let progress = Arc::new(EventLines(Mutex::new(())));
                runtime()?.block_on(pull(store, &config, &reference, &opts, progress))?
            } else {
                let progress = progress::for_terminal(quiet);
                let rec = runtime()?.block_on(pull(
                    store,
                    &config,
                    &reference,
                    &opts,
                    progress.clone(),
                ))?;
                progress.finish();
                rec
            };
            Ok(Reply::Pulled {
                digest: rec.target.to_string(),
                up_to_date: had.is_some_and(|old| old.config == rec.config),
                name: rec.name,
            })
        }
        Request::Push {
            root,
            config,
            image,
            target,
            insecure,
            quiet,
            events,
            auth,
        } => {
            let reference = ImageRef::parse(&target)?;
            let store = Arc::new(
                Store::open(&root)
                    .with_context(|| format!("opening the store at {}", root.display()))?,
            );
            let mut config = Config::load(&config)?;
            if let Some(a) = auth {
                let server = if a.server.is_empty() {
                    reference.registry().to_string()
                } else {
                    a.server
                };
                config
                    .given_credentials
                    .insert(server, (a.username, a.password));
            }
            let opts = PushOptions {
                insecure,
                ..Default::default()
            };
            let pushed = if events {
                let progress = Arc::new(EventLines(Mutex::new(())));
                runtime()?.block_on(push(store, &config, &image, &reference, &opts, progress))?
            } else {
                let progress = progress::for_terminal(quiet);
                let pushed = runtime()?.block_on(push(
                    store,
                    &config,
                    &image,
                    &reference,
                    &opts,
                    progress.clone(),
                ))?;
                progress.finish();
                pushed
            };
            Ok(Reply::Pushed {
                reference: pushed.reference,
                tag: pushed.tag,
                digest: pushed.digest.to_string(),
                size: pushed.size,
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
        Request::Distribution {
            config,
            image,
            auth,
        } => {
            let reference = ImageRef::parse(&image)?;
            let config = Config::load(&config)?;
            let given = auth.map(|a| (a.username, a.password));
            let d = runtime()?
                .block_on(barge_image::distribution::describe(
                    &config, &reference, given,
                ))
                .with_context(|| format!("describe {image}"))?;
            Ok(Reply::Described {
                descriptor: d.descriptor,
                platforms: d.platforms,
            })
        }
    }
}

/// Progress as JSON lines on stdout (`Reply::Progress`), before the reply.
struct EventLines(Mutex<()>);

impl Progress for EventLines {
    fn event(&self, event: Event) {
        let Some(ev) = PullEvent::from_image(&event) else {
            return;
        };
        if let Ok(mut line) = serde_json::to_vec(&Reply::Progress(ev)) {
            line.push(b'\n');
            // One writer at a time: lines never interleave. A reader gone is no reason to
            // stop the pull (the reply write will say so).
            let _guard = self.0.lock();
            let _ = std::io::stdout().lock().write_all(&line);
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
            kind: None,
        },
        Ok(_) => match serde_json::from_slice::<Request>(&body) {
            Err(e) => Reply::Failed {
                error: format!("decoding the request on stdin: {e}"),
                kind: Some("bad_parameter".into()),
            },
            Ok(req) => serve(req).unwrap_or_else(|e| Reply::Failed {
                error: format::error_chain(&e),
                kind: e.downcast_ref::<barge_image::Error>().map(|ie| {
                    barge_engine::registry::kind_name(barge_engine::error::image_kind(ie))
                        .to_string()
                }),
            }),
        },
    };
    let ok = !matches!(reply, Reply::Failed { .. });
    let written = serde_json::to_vec(&reply)
        .map(|mut b| {
            b.push(b'\n');
            b
        })
        .map_err(std::io::Error::other)
        .and_then(|b| std::io::stdout().lock().write_all(&b));
    if let Err(e) = written {
        eprintln!("barge-registry: writing the reply: {e}");
        std::process::exit(2);
    }
    std::process::exit(if ok { 0 } else { 1 });
}
