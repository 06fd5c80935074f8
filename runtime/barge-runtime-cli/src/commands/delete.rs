use barge_runtime::{container, Result, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill a running container first (SIGKILL); succeed if it doesn't exist.
    #[arg(short, long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    container::delete(store, &a.id, a.force)?;
    Ok(0)
}
