//! `barge exec`: run a process in a running container, through the runtime's `exec` (which
//! joins the container's namespaces and cgroup, and proxies a terminal with `-t`).

use anyhow::{bail, Result};
use barge_engine::status::State;
use clap::Parser;

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
    let engine = ctx.engine()?;
    let rec = engine.db.find(&args.container)?;
    let st = engine.status(&rec);
    if st.state != State::Running {
        bail!(
            "container {} is not running (it is {})",
            args.container,
            st.state.as_str()
        );
    }
    let mut argv = vec![
        "barge-runtime".to_string(),
        "--root".into(),
        engine.paths.runtime_root().display().to_string(),
        "exec".into(),
    ];
    if args.detach {
        argv.push("--detach".into());
    }
    if args.tty {
        argv.push("--tty".into());
    }
    for e in &args.env {
        let e = barge_engine::config::expand_env(e).map_err(anyhow::Error::msg)?;
        if !e.is_empty() {
            argv.extend(["--env".into(), e]);
        }
    }
    if let Some(u) = &args.user {
        let u = barge_engine::user::resolve(&engine.paths.rootfs(&rec.id), u)?;
        argv.extend(["--user".into(), format!("{}:{}", u.uid, u.gid)]);
        for g in u.additional_gids {
            argv.extend(["--additional-gids".into(), g.to_string()]);
        }
    }
    if let Some(w) = &args.workdir {
        argv.extend(["--cwd".into(), w.clone()]);
    }
    if args.privileged {
        for c in barge_engine::spec::grantable_capabilities() {
            argv.extend(["--cap".into(), c]);
        }
    }
    argv.push(rec.id.clone());
    argv.extend(args.command);
    let cli = barge_runtime_cli::Cli::try_parse_from(argv)?;
    Ok(barge_runtime_cli::run(cli))
}
