use barge_runtime::{container, Result, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    container::set_paused(store, &a.id, true)?;
    Ok(0)
}
