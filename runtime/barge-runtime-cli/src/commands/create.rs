use std::path::PathBuf;

use barge_runtime::{container, CreateOptions, Result, Store};

/// Options shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write the container init's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramdisk roots).
    #[arg(long)]
    pub no_pivot: bool,
    /// Don't create a new session keyring for the container.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from fd 3) to the container process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

impl CreateArgs {
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            console_fd: None,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: CreateArgs,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    container::create(store, &a.create.options())?;
    Ok(0)
}
