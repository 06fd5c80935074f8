//! `barge run`: create, start, and (unless `-d`) attach until the container exits, with its
//! exit code passed through.

use anyhow::Result;
use barge_engine::container::Streams;
use barge_engine::ErrorKind;

use super::create::{create, CreateArgs};
use super::stream::{pump, Ended, Options};
use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Print help (-h is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Proxy received signals to the container (non-TTY mode).
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    if !args.detach {
        if let Some(code) = super::refuse_without_tty(args.create.tty, args.create.interactive) {
            return Ok(code);
        }
    }
    let engine = ctx.engine()?;
    let opts = args.create.options(args.rm)?;
    let rec = create(&engine, &args.create, opts)?;
    let attach = (!args.detach).then_some(Streams {
        stdin: args.create.interactive,
        stdout: true,
        stderr: true,
    });
    let sock = match engine.start(&rec.id, attach) {
        Ok((_, sock)) => sock,
        // A `--rm` container that failed to start is already removed by the engine.
        Err(e) => {
            // docker: 127 (program not found), 126 (not executable), else 125.
            if matches!(
                e.kind(),
                ErrorKind::ProgramNotFound | ErrorKind::NotExecutable
            ) {
                eprintln!("barge: {e}");
                return Ok(e.exit_code());
            }
            return Err(e.into());
        }
    };
    let Some(sock) = sock else {
        println!("{}", rec.id);
        return Ok(0);
    };
    let ended = pump(
        engine.clone(),
        sock,
        Options {
            id: rec.id.clone(),
            tty: args.create.tty,
            stdin: args.create.interactive,
            sig_proxy: args.sig_proxy && !args.create.tty,
        },
    );
    match ended {
        Ended::Exited(code) => {
            if args.rm {
                remove_after(&engine, &rec.id)?;
            }
            Ok(code)
        }
        Ended::Detached => {
            // Detached with ^P^Q, or the shim went away: report the exit if there is one.
            let st = engine.status(&rec);
            if st.state.is_active() {
                Ok(0)
            } else {
                let code = st.exit_code.unwrap_or(0);
                if args.rm {
                    remove_after(&engine, &rec.id)?;
                }
                Ok(code)
            }
        }
    }
}

/// `--rm`: the shim removes the container too (so it goes even if we are killed); whoever
/// comes second finds it gone.
fn remove_after(engine: &barge_engine::Engine, id: &str) -> Result<()> {
    match engine.remove(id, true, true) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
