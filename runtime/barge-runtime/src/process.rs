//! The last steps before exec: rlimits, user and groups, capabilities, no_new_privs, umask,
//! fds, and finding the executable.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use caps::{CapSet, Capability as Cap};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Pid, Uid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process};

use crate::error::{Context, Error, ExecFailure, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Apply `process.rlimits` (before dropping privileges, so hard limits can be raised).
pub fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().as_deref().unwrap_or_default() {
        let res = rlimit_resource(r.typ());
        crate::sys::setrlimit(res, r.soft(), r.hard())
            .ctx(|| format!("set rlimit {:?} to {}/{}", r.typ(), r.soft(), r.hard()))?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// Convert a spec capability set, leaving out capabilities this kernel doesn't know.
fn to_caps(set: Option<&Capabilities>, supported: &HashSet<Cap>) -> Result<HashSet<Cap>> {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        let cap: Cap = name
            .parse()
            .map_err(|_| Error::Config(format!("unknown capability {name}")))?;
        if supported.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

/// The five capability sets of the process, resolved against the running kernel.
pub struct CapPlan {
    bounding: HashSet<Cap>,
    effective: HashSet<Cap>,
    permitted: HashSet<Cap>,
    inheritable: HashSet<Cap>,
    ambient: HashSet<Cap>,
}

impl CapPlan {
    pub fn from_process(p: &Process) -> Result<Option<Self>> {
        let Some(c) = p.capabilities() else {
            return Ok(None);
        };
        let all = caps::runtime::thread_all_supported();
        Ok(Some(Self {
            bounding: to_caps(c.bounding().as_ref(), &all)?,
            effective: to_caps(c.effective().as_ref(), &all)?,
            permitted: to_caps(c.permitted().as_ref(), &all)?,
            inheritable: to_caps(c.inheritable().as_ref(), &all)?,
            ambient: to_caps(c.ambient().as_ref(), &all)?,
        }))
    }

    /// Drop everything outside the bounding set (needs CAP_SETPCAP: do it before setuid).
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| Error::Container(format!("drop {cap} from bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Set inheritable, permitted, effective and ambient (after setuid with keepcaps).
    pub fn apply_rest(&self) -> Result<()> {
        let set = |s: CapSet, v: &HashSet<Cap>| {
            caps::set(None, s, v)
                .map_err(|e| Error::Container(format!("set {s:?} capabilities: {e}")))
        };
        // Effective ⊆ permitted at every step: shrink effective before permitted.
        let eff_now = caps::read(None, CapSet::Effective).unwrap_or_default();
        set(
            CapSet::Effective,
            &eff_now.intersection(&self.permitted).copied().collect(),
        )?;
        set(CapSet::Inheritable, &self.inheritable)?;
        set(CapSet::Permitted, &self.permitted)?;
        set(CapSet::Effective, &self.effective)?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| Error::Container(format!("clear ambient capabilities: {e}")))?;
        for cap in &self.ambient {
            // The kernel only allows ambient caps that are permitted and inheritable.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap)
                    .map_err(|e| Error::Container(format!("raise ambient {cap}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Switch to the process user: supplementary groups, gid, uid.
pub fn set_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    if setgroups_allowed {
        let groups: Vec<Gid> = u
            .additional_gids()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| Gid::from_raw(*g))
            .collect();
        setgroups(&groups).ctx(|| format!("setgroups {groups:?}"))?;
    } else if u.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(Error::Config(
            "process.user.additionalGids cannot be set: setgroups is denied in this user namespace"
                .into(),
        ));
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid).ctx(|| format!("setresgid {gid}"))?;
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid).ctx(|| format!("setresuid {uid}"))
}

/// Apply process.user.umask (default 0022, as runc).
pub fn set_umask(p: &Process) {
    let m = p.user().umask().unwrap_or(0o022);
    umask(Mode::from_bits_truncate(m as libc::mode_t));
}

/// Find `args[0]` in the container's PATH (from the process env), as runc does at create.
pub fn find_executable(p: &Process) -> Result<PathBuf> {
    let args = p.args().as_deref().unwrap_or_default();
    let name = args
        .first()
        .ok_or_else(|| Error::Config("process.args is empty".into()))?;
    if name.contains('/') {
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            p.cwd().join(name)
        };
        return check_exec(&path).map(|_| PathBuf::from(name));
    }
    let path_var = env_value(p, "PATH").unwrap_or_else(|| DEFAULT_PATH.to_string());
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if check_exec(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Error::ExecFailed {
        reason: ExecFailure::NotFound,
        message: format!("exec: {name:?}: executable file not found in $PATH"),
    })
}

fn check_exec(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let message = format!("exec: {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::ExecFailed {
                reason: ExecFailure::NotFound,
                message,
            },
            std::io::ErrorKind::PermissionDenied => Error::ExecFailed {
                reason: ExecFailure::NotExecutable,
                message,
            },
            _ => Error::Container(message),
        }
    })?;
    let not_executable = |what: &str| Error::ExecFailed {
        reason: ExecFailure::NotExecutable,
        message: format!("exec: {}: {what}", path.display()),
    };
    if meta.is_dir() {
        return Err(not_executable("is a directory"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(not_executable("permission denied"));
    }
    Ok(())
}

fn env_value(p: &Process, key: &str) -> Option<String> {
    p.env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// argv and envp as C strings; `extra_env` (LISTEN_FDS...) is appended.
pub fn exec_vectors(p: &Process, extra_env: &[String]) -> Result<(Vec<CString>, Vec<CString>)> {
    let c = |s: &str, what: &str| {
        CString::new(s.as_bytes())
            .map_err(|_| Error::Config(format!("process.{what} contains a NUL byte: {s:?}")))
    };
    let argv = p
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|a| c(a, "args"))
        .collect::<Result<Vec<_>>>()?;
    let mut envp = p
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| c(e, "env"))
        .collect::<Result<Vec<_>>>()?;
    for e in extra_env {
        envp.push(c(e, "env")?);
    }
    Ok((argv, envp))
}

/// execve the resolved program; only returns on failure.
pub fn exec(path: &Path, argv: &[CString], envp: &[CString]) -> Error {
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
        return Error::Container(format!("exec {}: path contains NUL", path.display()));
    };
    match nix::unistd::execve(&cpath, argv, envp) {
        Err(e) => {
            let message = format!("exec {}: {e}", path.display());
            let reason = match e {
                nix::errno::Errno::ENOENT => ExecFailure::NotFound,
                nix::errno::Errno::EACCES
                | nix::errno::Errno::ENOEXEC
                | nix::errno::Errno::EISDIR
                | nix::errno::Errno::EPERM => ExecFailure::NotExecutable,
                _ => return Error::Container(message),
            };
            Error::ExecFailed { reason, message }
        }
        Ok(never) => match never {},
    }
}

/// Wait until `pid` exits (true) or `timeout` passes (false), via a pidfd.
pub fn wait_exit(pid: Pid, timeout: Option<Duration>) -> bool {
    let Ok(pidfd) = crate::sys::pidfd_open(pid) else {
        return true; // already gone
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}
