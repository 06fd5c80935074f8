//! `barge login` / `barge logout`: credentials in the config directory's auth.json (0600).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: this shows in the process list).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// The registry (host[:port]).
    pub server: String,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    pub server: String,
}

fn read_line(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Read a password without echoing it when stdin is a terminal.
fn read_password() -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let Ok(saved) = tcgetattr(&stdin) else {
        return read_line("Password: ");
    };
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning off terminal echo")?;
    let line = read_line("Password: ");
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    line
}

pub fn login(ctx: &Ctx, args: LoginArgs) -> Result<()> {
    let user = match args.username {
        Some(u) => u,
        None => read_line("Username: ")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p,
        (None, _) => read_password()?,
    };
    if user.is_empty() || password.is_empty() {
        anyhow::bail!(
            "login to {}: username and password must not be empty",
            args.server
        );
    }
    let config = ctx.config()?;
    barge_engine::pull::login_check(
        &ctx.helper()?,
        &args.server,
        &user,
        &password,
        args.insecure,
    )?;
    config.store_credentials(&args.server, &user, &password)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(ctx: &Ctx, args: LogoutArgs) -> Result<()> {
    if ctx.config()?.remove_credentials(&args.server)? {
        println!("Removing login credentials for {}", args.server);
    } else {
        println!("Not logged in to {}", args.server);
    }
    Ok(())
}
