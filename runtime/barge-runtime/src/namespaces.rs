//! Which namespaces the container creates and which it joins by path.

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{at, Context, Result};

/// The namespace plan derived from `linux.namespaces`.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Namespaces joined by path, user namespace first.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Raw clone flags of the namespaces to create.
    pub new: libc::c_int,
}

pub fn flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

impl Plan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Self {
        let mut plan = Plan::default();
        for ns in namespaces {
            match ns.path() {
                Some(p) => plan.join.push((ns.typ(), p.clone())),
                None => plan.new |= flag(ns.typ()),
            }
        }
        plan.join
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new & flag(t) != 0
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _)| *j == t)
    }

    /// Open every namespace file up front (so a bad path fails before anything is created).
    pub fn open_joins(&self) -> Result<Vec<(LinuxNamespaceType, File)>> {
        self.join
            .iter()
            .map(|(t, p)| {
                File::open(p)
                    .ctx(|| at(&format!("open {t} namespace"), p))
                    .map(|f| (*t, f))
            })
            .collect()
    }
}

/// Enter each opened namespace, in order.
pub fn enter(files: &[(LinuxNamespaceType, File)]) -> Result<()> {
    for (t, f) in files {
        setns(f, CloneFlags::from_bits_retain(flag(*t))).ctx(|| format!("join {t} namespace"))?;
    }
    Ok(())
}
