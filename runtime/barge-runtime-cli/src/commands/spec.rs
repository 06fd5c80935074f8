use std::path::PathBuf;

use barge_runtime::{default_spec::default_spec, Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write config.json into.
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// A config for running as an unprivileged user (user namespace, no cgroups).
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: &Args) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists: remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&default_spec(a.rootless))
        .map_err(|e| Error::Container(format!("encode config: {e}")))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::Io {
        context: format!("write {}", path.display()),
        source: e,
    })?;
    Ok(0)
}
