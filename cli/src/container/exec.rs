//! `barge exec`: run a process in a running container (docker's exec create + start): in the
//! foreground through the runtime's `exec` (which joins the container's namespaces and cgroup,
//! and proxies a terminal with `-t`), or with `-d` under the container's shim, which reaps it
//! and records its exit code for `barge container exec-inspect`.

use anyhow::Result;
use barge_engine::exec::ExecOptions;
use barge_engine::ErrorKind;

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
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::Unavailable
            ) =>
        {
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
        engine.exec_start_foreground(&id)
    };
    match started {
        Ok(code) => Ok(code),
        // docker: the OCI runtime's message, and 127 (not found) or 126 (not executable).
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ProgramNotFound | ErrorKind::NotExecutable
            ) =>
        {
            eprintln!("barge: {e}");
            Ok(e.exit_code())
        }
        Err(e) => Err(e.into()),
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
