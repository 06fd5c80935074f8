//! `barge pod start|stop|rm`: each takes one or more pods, prints each pod's id it handled
//! and reports each failure (exit 1 if any).

use anyhow::Result;

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub pods: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the containers.
    #[arg(short, long = "time", visible_alias = "timeout")]
    pub time: Option<u32>,
    #[arg(required = true)]
    pub pods: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Stop running containers first.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub pods: Vec<String>,
}

fn each(names: &[String], mut f: impl FnMut(&str) -> Result<String>) -> i32 {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("barge: {}", crate::format::error_chain(&e));
                code = 1;
            }
        }
    }
    code
}

pub fn start(ctx: &Ctx, args: NamesArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.pods, |n| Ok(engine.pod_start(n)?.id)))
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.pods, |n| Ok(engine.pod_stop(n, args.time)?.id)))
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    Ok(each(&args.pods, |n| {
        Ok(engine.pod_remove(n, args.force)?.id)
    }))
}
