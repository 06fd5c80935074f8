//! Writing a new user namespace's uid and gid maps (`/proc/<pid>/{uid,gid}_map`).
//!
//! Who may write what is the kernel's rule (user_namespaces(7)):
//! - root writes any mapping directly;
//! - any other user may write, directly, only a map of its own effective uid (gid) to one
//!   container id, and for the gid map only once `setgroups` is `deny`;
//! - everything else goes through the setuid helpers `newuidmap` / `newgidmap` (Debian's
//!   `uidmap` package), which allow the ranges `/etc/subuid` / `/etc/subgid` grant the user.

use std::path::Path;
use std::process::Command;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::{Context, Error, Result};

/// The two maps of a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
}

/// How one map gets written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Root: straight into the file.
    Direct,
    /// A non-root caller mapping only its own id (gid map: after `setgroups` `deny`).
    DirectSelf,
    /// A non-root caller with any other mapping: the setuid helper.
    Helper,
}

/// The way `kind`'s map `m` is written by a caller with effective uid `euid` and the caller's
/// own (effective) id of that kind `own`.
fn method(m: &[LinuxIdMapping], euid: u32, own: u32) -> Method {
    if euid == 0 {
        return Method::Direct;
    }
    match m {
        [one] if one.host_id() == own && one.size() == 1 => Method::DirectSelf,
        _ => Method::Helper,
    }
}

/// The map file's text: one `container host size` line per range.
fn map_text(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// `container host size` of every range, flattened: the helpers' arguments after the pid.
fn helper_args(m: &[LinuxIdMapping]) -> Vec<String> {
    m.iter()
        .flat_map(|m| [m.container_id(), m.host_id(), m.size()])
        .map(|v| v.to_string())
        .collect()
}

/// The mapping as shown in errors: `0 1000 1, 1 100000 65536`.
fn shown(m: &[LinuxIdMapping]) -> String {
    map_text(m).trim_end().replace('\n', ", ")
}

/// Write the uid and gid maps of the user namespace process `pid` has just created, as
/// `linux.uidMappings` / `linux.gidMappings` ask. Empty mappings are left unwritten.
pub(crate) fn write_id_maps(pid: Pid, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    for (kind, maps, own) in [
        (Kind::Uid, linux.uid_mappings(), euid),
        (Kind::Gid, linux.gid_mappings(), egid),
    ] {
        let maps = maps.as_deref().unwrap_or_default();
        if maps.is_empty() {
            continue;
        }
        match method(maps, euid, own) {
            Method::Direct => write_direct(pid, kind, maps)?,
            Method::DirectSelf => {
                if kind == Kind::Gid {
                    // The kernel refuses an unprivileged gid map while setgroups is allowed.
                    let path = format!("/proc/{pid}/setgroups");
                    std::fs::write(&path, "deny").ctx(|| {
                        format!("write \"deny\" to {path} (needed before an unprivileged gid_map)")
                    })?;
                }
                write_direct(pid, kind, maps)?;
            }
            Method::Helper => run_helper(pid, kind, maps, euid)?,
        }
    }
    Ok(())
}

fn write_direct(pid: Pid, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let path = format!("/proc/{pid}/{}", kind.file());
    std::fs::write(&path, map_text(maps)).ctx(|| format!("write {path} ({})", shown(maps)))
}

/// `newuidmap <pid> <container> <host> <size> ...` (or `newgidmap`), naming the tool, the
/// mapping and what to check when it fails.
fn run_helper(pid: Pid, kind: Kind, maps: &[LinuxIdMapping], euid: u32) -> Result<()> {
    let tool = kind.tool();
    let what = format!("{} [{}] (runtime uid {euid})", kind.field(), shown(maps));
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(helper_args(maps))
        .stdin(std::process::Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Unsupported(format!(
                "{what}: a non-root user needs {tool} for any mapping other than its own id \
                 to one container id, and {tool} is not installed (not found in PATH; Debian: \
                 apt-get install uidmap)"
            )))
        }
        Err(e) => return Err(e).ctx(|| format!("run {tool} for {what}")),
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let subid = kind.subid_file();
    let missing = if Path::new(subid).exists() {
        ""
    } else {
        " (it is missing)"
    };
    let hint = format!(
        "{subid}{missing} must grant uid {euid}, by name or number, the mapped host ids other \
         than its own"
    );
    Err(Error::Container(format!(
        "{tool} failed ({}) for {what}: {}; {hint}",
        out.status,
        if stderr.is_empty() {
            "no message"
        } else {
            stderr
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(v: &[(u32, u32, u32)]) -> Vec<LinuxIdMapping> {
        v.iter()
            .map(|&(c, h, s)| {
                serde_json::from_value(
                    serde_json::json!({"containerID": c, "hostID": h, "size": s}),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn root_writes_everything_directly() {
        assert_eq!(method(&maps(&[(0, 0, 65536)]), 0, 0), Method::Direct);
        assert_eq!(
            method(&maps(&[(0, 1000, 1), (1, 100000, 65536)]), 0, 0),
            Method::Direct
        );
    }

    #[test]
    fn non_root_writes_only_its_own_single_id_directly() {
        assert_eq!(
            method(&maps(&[(0, 1000, 1)]), 1000, 1000),
            Method::DirectSelf
        );
        // Any container id will do, as long as it is one id and the host id is ours.
        assert_eq!(
            method(&maps(&[(1000, 1000, 1)]), 1000, 1000),
            Method::DirectSelf
        );
        assert_eq!(method(&maps(&[(0, 1000, 2)]), 1000, 1000), Method::Helper);
        assert_eq!(method(&maps(&[(0, 1001, 1)]), 1000, 1000), Method::Helper);
        assert_eq!(
            method(&maps(&[(0, 1000, 1), (1, 100000, 65536)]), 1000, 1000),
            Method::Helper
        );
        // The gid map is judged by the caller's gid.
        assert_eq!(method(&maps(&[(0, 50, 1)]), 1000, 50), Method::DirectSelf);
    }

    #[test]
    fn map_text_and_helper_args() {
        let m = maps(&[(0, 1000, 1), (1, 100000, 65536)]);
        assert_eq!(map_text(&m), "0 1000 1\n1 100000 65536\n");
        assert_eq!(helper_args(&m), ["0", "1000", "1", "1", "100000", "65536"]);
        assert_eq!(shown(&m), "0 1000 1, 1 100000 65536");
    }
}
