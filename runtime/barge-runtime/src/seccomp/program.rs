//! The filter as the kernel takes it (BPF instructions plus seccomp(2) flags), built once per
//! profile and cached.
//!
//! libseccomp needs about 10 ms to compile Docker's default profile for three architectures
//! and generate its BPF. Containers of one host share a handful of profiles, so root keeps the
//! generated program in `/run/barge/seccomp-cache`, keyed by the profile's JSON and the barge
//! and libseccomp versions; later containers with the same profile read about 10 KB instead.
//! The init installs the program with one seccomp(2) call: no allocation after fork.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

use super::compile::{lib_version, Filter};
use crate::error::{Context, Error, Result};
use barge_util::fs::{write_atomic, Durability};

/// Where root caches generated programs (tmpfs: gone at reboot, like the libseccomp build).
const CACHE_DIR: &str = "/run/barge/seccomp-cache";

/// What the cached programs hold, beyond libseccomp's output (part of the cache key, so a
/// program cached by an older build is never reused).
const PROGRAM_FORMAT: &str = "enosys-prologue-1";

/// A filter ready to install.
#[derive(Debug)]
pub struct Program {
    bpf: Vec<u8>,
    flags: libc::c_ulong,
    notify: bool,
}

impl Program {
    /// Build the program for `linux.seccomp`: from the cache, or compiled (errors name the
    /// field) and then cached.
    pub fn build(s: &LinuxSeccomp) -> Result<Program> {
        let key = cache_key(s)?;
        let notify = uses_notify(s);
        let flags = flags(s, notify);
        let cache = cache_path(&key);
        if let Some(bpf) = cache.as_deref().and_then(|p| read_cached(p, &key)) {
            return Ok(Program { bpf, flags, notify });
        }
        let bpf = Filter::compile(s)?.bpf()?;
        // System calls newer than the profile answer ENOSYS (see `enosys`).
        let bpf = match super::enosys::prologue(s) {
            Some(mut p) => {
                p.extend_from_slice(&bpf);
                p
            }
            None => bpf,
        };
        if bpf.len() / crate::sys::SOCK_FILTER_SIZE > libc::BPF_MAXINSNS as usize {
            return Err(Error::Config(format!(
                "linux.seccomp: the filter needs {} BPF instructions, more than the kernel's {}",
                bpf.len() / crate::sys::SOCK_FILTER_SIZE,
                libc::BPF_MAXINSNS
            )));
        }
        if let Some(p) = cache {
            if let Err(e) = write_cached(&p, &key, &bpf) {
                tracing::debug!("seccomp cache not written: {e}");
            }
        }
        Ok(Program { bpf, flags, notify })
    }

    /// Whether a rule notifies (the listener must reach `listenerPath`).
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// Install into the calling process (the init). Needs `no_new_privs` or CAP_SYS_ADMIN.
    /// Returns the notify listener if the filter uses NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        crate::sys::seccomp_set_filter(&self.bpf, self.flags)
            .ctx(|| format!("load seccomp filter ({} instructions)", self.len()))
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.bpf.len() / crate::sys::SOCK_FILTER_SIZE
    }

    /// Whether the program has no instructions (never, for a built program).
    pub fn is_empty(&self) -> bool {
        self.bpf.is_empty()
    }
}

fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify)
}

/// seccomp(2) flags: the spec's (TSYNC is moot for the single-threaded init) and
/// NEW_LISTENER for NOTIFY, as libseccomp would pass them.
fn flags(s: &LinuxSeccomp, notify: bool) -> libc::c_ulong {
    let mut f = 0;
    for flag in s.flags().iter().flatten() {
        f |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        };
    }
    if notify {
        f |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    f
}

/// Everything the generated program depends on.
fn cache_key(s: &LinuxSeccomp) -> Result<String> {
    let profile = serde_json::to_string(s)
        .map_err(|e| Error::Container(format!("encode linux.seccomp: {e}")))?;
    Ok(format!(
        "barge {} {PROGRAM_FORMAT} libseccomp {} {}\n{profile}",
        env!("CARGO_PKG_VERSION"),
        lib_version(),
        std::env::consts::ARCH
    ))
}

fn cache_path(key: &str) -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    Some(Path::new(CACHE_DIR).join(format!("{:016x}.bpf", h.finish())))
}

/// A cached program: the key, a NUL, the BPF. The key is compared in full, so a hash collision
/// or a stale file is a miss, never a wrong filter.
fn read_cached(path: &Path, key: &str) -> Option<Vec<u8>> {
    let data = fs::read(path).ok()?;
    let nul = data.iter().position(|b| *b == 0)?;
    let (k, rest) = data.split_at(nul);
    let bpf = &rest[1..];
    (k == key.as_bytes()
        && !bpf.is_empty()
        && bpf.len().is_multiple_of(crate::sys::SOCK_FILTER_SIZE))
    .then(|| bpf.to_vec())
}

fn write_cached(path: &Path, key: &str, bpf: &[u8]) -> Result<()> {
    let dir = Path::new(CACHE_DIR);
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .ctx(|| crate::error::at("create", dir))?;
    let mut data = Vec::with_capacity(key.len() + 1 + bpf.len());
    data.extend_from_slice(key.as_bytes());
    data.push(0);
    data.extend_from_slice(bpf);
    write_atomic(path, &data, 0o600, Durability::Atomic)
        .ctx(|| crate::error::at("write compiled seccomp filter", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn cache_round_trip_and_key_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bpf");
        let bpf = vec![7u8; 16];
        std::fs::write(&p, [b"key-a".as_slice(), &[0], &bpf].concat()).unwrap();
        assert_eq!(read_cached(&p, "key-a"), Some(bpf));
        assert_eq!(read_cached(&p, "key-b"), None, "another key must miss");
        std::fs::write(&p, [b"key-a".as_slice(), &[0], &[1, 2, 3]].concat()).unwrap();
        assert_eq!(read_cached(&p, "key-a"), None, "a torn program must miss");
    }

    #[test]
    fn flags_follow_the_spec_and_notify() {
        let s = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(uses_notify(&s));
        assert_eq!(
            flags(&s, true),
            libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        );
    }

    #[test]
    fn the_cached_program_is_the_generated_one() {
        let s = super::super::default_profile();
        let first = Program::build(&s).unwrap();
        let again = Program::build(&s).unwrap();
        assert_eq!(first.bpf, again.bpf);
        let plain = Filter::compile(&s).unwrap().bpf().unwrap();
        let prologue = super::super::enosys::prologue(&s).unwrap();
        assert_eq!(first.bpf, [prologue, plain].concat());
        assert!(first.len() > 100, "{} instructions", first.len());
    }
}
