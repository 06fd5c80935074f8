use barge_runtime::{container, signal, Result, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process in the container's cgroup, not only init.
    #[arg(short, long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    let sig = signal::parse(&a.signal)?;
    container::kill_container(store, &a.id, sig, a.all)?;
    Ok(0)
}
