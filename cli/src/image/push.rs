//! `barge push [--insecure|--tls-verify=false] [--creds USER:PASS] [-q] NAME[:TAG]`

use anyhow::{bail, Result};
use barge_engine::pull::PullProgress;
use barge_engine::push::PushOptions;
use barge_engine::registry::proto::Credentials;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// `false`: the same as --insecure (podman's spelling).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// USER:PASSWORD for this push instead of the credentials stored by `barge login`.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG] of a stored image (`:latest` when no tag is given).
    pub image: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let auth = match &args.creds {
        None => None,
        Some(c) => match c.split_once(':') {
            Some((u, p)) if !u.is_empty() => Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
                server: String::new(),
            }),
            _ => bail!("--creds {c:?}: expected USER:PASSWORD"),
        },
    };
    let mut opts = PushOptions {
        insecure: args.insecure || !args.tls_verify,
        auth,
        progress: if args.quiet {
            PullProgress::Quiet
        } else {
            PullProgress::Terminal
        },
    };
    let pushed = barge_engine::push::push(&ctx.helper()?, &args.image, None, &mut opts)?;
    if args.quiet {
        println!("{}", pushed.digest);
    } else {
        println!("{}", pushed.status());
    }
    Ok(())
}
