//! AppArmor profiles and SELinux labels: applied where the host has the LSM, never silently
//! dropped where it would have enforced them.
//!
//! Both take effect at the container's execve: the init writes the profile or label to its
//! `attr/exec` file just before (as runc does, before no_new_privs is set).

use std::fs;
use std::path::Path;

use oci_spec::runtime::{Process, Spec};

use crate::error::{Context, Error, Result};

fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn profile(p: &Process) -> Option<&str> {
    p.apparmor_profile().as_deref().filter(|s| !s.is_empty())
}

fn label(p: &Process) -> Option<&str> {
    p.selinux_label().as_deref().filter(|s| !s.is_empty())
}

/// Check at `create`: an AppArmor profile on a host without AppArmor is ignored with a warning
/// (as runc); an SELinux label on a host without SELinux is an error (as runc).
pub fn check(spec: &Spec) -> Result<()> {
    let Some(p) = spec.process() else {
        return Ok(());
    };
    if let Some(profile) = profile(p) {
        if !apparmor_enabled() {
            tracing::warn!(
                "process.apparmorProfile {profile:?} ignored: AppArmor is not enabled on this host"
            );
        }
    }
    if let Some(label) = label(p) {
        if !selinux_enabled() {
            return Err(Error::Config(format!(
                "process.selinuxLabel {label:?} is set but SELinux is not enabled on this host"
            )));
        }
    }
    Ok(())
}

/// In the init, right before execve: ask the LSMs to switch the process at exec.
pub fn apply_exec_labels(p: &Process) -> Result<()> {
    if let Some(profile) = profile(p).filter(|_| apparmor_enabled()) {
        // The AppArmor-specific file where the kernel has it (5.8+), else the shared one.
        let file = [
            "/proc/thread-self/attr/apparmor/exec",
            "/proc/thread-self/attr/exec",
        ]
        .into_iter()
        .find(|f| Path::new(f).exists())
        .unwrap_or("/proc/thread-self/attr/exec");
        fs::write(file, format!("exec {profile}"))
            .ctx(|| format!("apply AppArmor profile {profile:?} ({file})"))?;
    }
    if let Some(label) = label(p).filter(|_| selinux_enabled()) {
        let file = "/proc/thread-self/attr/exec";
        fs::write(file, label).ctx(|| format!("apply SELinux label {label:?} ({file})"))?;
    }
    Ok(())
}
