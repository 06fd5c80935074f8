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
    /// Include barge's default seccomp profile (Docker's default, for the spec's capabilities).
    #[arg(long)]
    pub seccomp: bool,
}

pub fn run(a: &Args) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists: remove it first",
            path.display()
        )));
    }
    let mut spec = default_spec(a.rootless);
    if a.seccomp {
        let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        let profile = barge_runtime::seccomp::default_profile_for_caps(&caps);
        spec["linux"]["seccomp"] = serde_json::to_value(profile)
            .map_err(|e| Error::Container(format!("encode seccomp profile: {e}")))?;
    }
    let text = serde_json::to_string_pretty(&spec)
        .map_err(|e| Error::Container(format!("encode config: {e}")))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::Io {
        context: format!("write {}", path.display()),
        source: e,
    })?;
    Ok(0)
}
