//! cgroup v2 device control: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program built from the rules.

use std::path::Path;

use super::devices::Rule;
use crate::error::{Error, Result};

/// Load a device program for `rules` and attach it to the cgroup directory `dir`, replacing
/// the programs barge attached there before.
pub fn attach(dir: &Path, rules: &[Rule]) -> Result<()> {
    let _ = rules;
    Err(Error::Unsupported(format!(
        "device rules on cgroup v2 ({})",
        dir.display()
    )))
}
