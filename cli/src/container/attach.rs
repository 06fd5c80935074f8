//! `barge attach`: connect our terminal to a running container's stdio.

use anyhow::{bail, Result};
use barge_engine::container::Streams;
use barge_engine::status::State;

use super::stream::{pump, Ended, Options};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let rec = engine.db.find(&args.container)?;
    let st = engine.status(&rec);
    if !matches!(st.state, State::Running | State::Paused) {
        bail!(
            "cannot attach to a stopped container, start it first ({} is {})",
            args.container,
            st.state.as_str()
        );
    }
    let stdin = rec.config.open_stdin && !args.no_stdin;
    if let Some(code) = super::refuse_without_tty(rec.config.tty, stdin) {
        return Ok(code);
    }
    let sock = engine.attach_socket(
        &rec.id,
        Streams {
            stdin,
            stdout: true,
            stderr: true,
        },
    )?;
    let ended = pump(
        engine.clone(),
        sock,
        Options {
            id: rec.id.clone(),
            tty: rec.config.tty,
            stdin,
            sig_proxy: args.sig_proxy && !rec.config.tty,
        },
    );
    Ok(match ended {
        Ended::Exited(c) => c,
        Ended::Detached => 0,
    })
}
