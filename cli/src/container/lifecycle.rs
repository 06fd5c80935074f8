//! `start`, `stop`, `kill`, `restart`, `rm`, `pause`, `unpause`, `wait`: each takes one or
//! more containers and, as docker does, prints each name it handled and reports each failure.

use anyhow::Result;
use barge_engine::container::Streams;

use super::stream::{pump, Ended, Options};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long = "time", visible_alias = "timeout")]
    pub time: Option<u32>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Run `f` on each container; print what it returns; exit 1 if any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<Option<String>>) -> i32 {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("barge: {}", crate::format::error_chain(&e));
                code = 1;
            }
        }
    }
    code
}

pub fn start(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    if args.attach || args.interactive {
        if args.containers.len() != 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let rec = engine.db.find(&args.containers[0])?;
        let stdin = args.interactive && rec.config.open_stdin;
        if let Some(code) = super::refuse_without_tty(rec.config.tty, stdin) {
            return Ok(code);
        }
        let (rec, sock) = engine.start(
            &args.containers[0],
            Some(Streams {
                stdin: args.interactive,
                stdout: true,
                stderr: true,
            }),
        )?;
        let Some(sock) = sock else { return Ok(0) };
        let ended = pump(
            engine.clone(),
            sock,
            Options {
                id: rec.id.clone(),
                tty: rec.config.tty,
                stdin: args.interactive && rec.config.open_stdin,
                sig_proxy: !rec.config.tty,
            },
        );
        return Ok(match ended {
            Ended::Exited(c) => c,
            Ended::Detached => 0,
        });
    }
    Ok(each(&args.containers, |n| {
        engine.start(n, None)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        engine.stop(n, args.time)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        engine.kill(n, &args.signal)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        engine.restart(n, args.time)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        engine.remove(n, args.force, args.volumes)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn pause(ctx: &Ctx, args: NamesArgs, paused: bool) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        engine.pause(n, paused)?;
        Ok(Some(n.to_string()))
    }))
}

pub fn wait(ctx: &Ctx, args: NamesArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.containers, |n| {
        Ok(Some(engine.wait(n)?.to_string()))
    }))
}
