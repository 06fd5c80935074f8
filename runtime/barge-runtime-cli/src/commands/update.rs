use barge_runtime::{Error, Result, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

pub fn run(_store: &Store, a: &Args) -> Result<i32> {
    Err(Error::Unsupported(format!("update {}: not implemented yet", a.id)))
}
