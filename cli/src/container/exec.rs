//! `barge exec`: run a process in a running container (docker's exec create + start). The
//! container's shim starts it (the runtime's `exec` joins the container's namespaces and
//! cgroup), reaps it and records its exit code for `barge container exec-inspect`; with `-d`
//! it runs in the background, else attached: a thin client, like docker's, relays our stdin
//! (`-i`), its output frames and our terminal (`-t`: raw mode, resized on SIGWINCH) through the
//! shim's socket, and exits with the process's exit code.

use anyhow::Result;
use barge_engine::container::Streams;
use barge_engine::exec::ExecOptions;
use barge_engine::Error;

use super::stream::{pump_exec, Ended, Options};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    if let Some(code) = super::refuse_without_tty(args.tty, args.interactive && !args.detach) {
        return Ok(code);
    }
    let engine = ctx.engine()?;
    let opts = ExecOptions {
        cmd: args.command,
        env: args.env,
        user: args.user,
        workdir: args.workdir,
        privileged: args.privileged,
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    };
    let id = match engine.exec_create(&args.container, &opts) {
        Ok(id) => id,
        // docker: exit 1 for a container that is missing or not running.
        Err(e @ (Error::NoSuchContainer(_) | Error::BadState { .. } | Error::ShimLost { .. })) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let started = if args.detach {
        engine.exec_start_detached(&id).map(|_| {
            println!("{id}");
            0
        })
    } else {
        let size = args
            .tty
            .then(barge_engine::terminal::terminal_size)
            .flatten();
        let attached = engine.exec_start_attached_sized(
            &id,
            Streams {
                stdin: args.interactive,
                stdout: true,
                stderr: true,
            },
            size,
        );
        match attached {
            Ok(sock) => {
                let opts = Options {
                    id: id.clone(),
                    tty: args.tty,
                    stdin: args.interactive,
                    // docker's exec proxies no signals: a client that goes hangs the
                    // process up (the shim sends it SIGHUP).
                    sig_proxy: false,
                };
                Ok(match pump_exec(engine.clone(), sock, opts) {
                    Ended::Exited(code) => code,
                    // Detached (^P^Q) or the shim went away.
                    Ended::Detached => 0,
                })
            }
            // A container started by an older barge: its shim can't, we (single-threaded)
            // may run the process ourselves.
            Err(Error::ShimOutdated { .. }) => engine.exec_start_foreground(&id),
            Err(e) => Err(e),
        }
    };
    match started {
        Ok(code) => Ok(code),
        Err(e) => match e.start_failure_code() {
            // docker: the OCI runtime's message, and 127 (not found) or 126 (not executable).
            Some(code) => {
                eprintln!("barge: {e}");
                Ok(code)
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Exec ids (or unique prefixes), as `exec -d` prints them.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `barge container exec-inspect ID...`: docker's exec inspect, as a JSON array.
pub fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut out = Vec::new();
    let mut code = 0;
    for id in &args.ids {
        match engine.exec_inspect(id) {
            Ok(i) => out.push(serde_json::to_value(i)?),
            Err(e) => {
                eprintln!("barge: {e}");
                code = 1;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(code)
}
