//! `barge daemon [FLAGS]`: replace this process with `barge-daemon` (next to this binary, or
//! `$BARGE_DAEMON`), passing the store locations on. The daemon is its own binary so that the
//! CLI does not map the HTTP server, and the daemon does not map the CLI.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's flags (`barge daemon --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(
    root: &std::path::Path,
    config: &std::path::Path,
    runroot: &std::path::Path,
    args: Args,
) -> i32 {
    let exe = match std::env::var_os("BARGE_DAEMON") {
        Some(p) => PathBuf::from(p),
        None => match std::env::current_exe() {
            Ok(e) => e.with_file_name("barge-daemon"),
            Err(e) => {
                eprintln!("barge: locate the barge binary: {e}");
                return 1;
            }
        },
    };
    let err = std::process::Command::new(&exe)
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(config)
        .arg("--runroot")
        .arg(runroot)
        .args(&args.args)
        .exec();
    eprintln!("barge: run {}: {err}", exe.display());
    1
}
