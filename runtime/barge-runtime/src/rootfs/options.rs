//! Parsing `mounts[].options` into mount(2) flags, propagation changes and fs data.

use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// Parsed mount options.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags passed to mount(2).
    pub flags: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`mode=755,size=65536k`).
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `idmap` or `ridmap` was given (the last one wins).
    pub idmap: Option<Idmap>,
}

/// The `idmap` / `ridmap` options: the bind mount gets an id mapping (see `rootfs::idmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// `idmap`: only the top mount of the bind is idmapped.
    Top,
    /// `ridmap`: every mount of the (r)bind tree is idmapped.
    Recursive,
}

/// Option names the runtime understands (also listed by `features`).
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ridmap",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// Parse the option list of one mount.
pub fn parse(options: &[String]) -> Result<MountOptions> {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        idmap: None,
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nosymfollow" => (nosymfollow(), MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), nosymfollow()),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "idmap" => {
                o.idmap = Some(Idmap::Top);
                continue;
            }
            "ridmap" => {
                o.idmap = Some(Idmap::Recursive);
                continue;
            }
            other => {
                if let Some(p) = propagation(other) {
                    o.propagation.push(p);
                } else if matches!(other, "tmpcopyup" | "rro") {
                    return Err(Error::Unsupported(format!(
                        "mount option {other:?} is not supported by this build"
                    )));
                } else if other.starts_with("idmap=") || other.starts_with("ridmap=") {
                    // crun's inline syntax; it must not end up as ignored fs data.
                    return Err(Error::Unsupported(format!(
                        "mount option {other:?}: mappings inside the option are not supported \
                         (give the mount uidMappings/gidMappings)"
                    )));
                } else {
                    data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o.data = data.join(",");
    Ok(o)
}

fn nosymfollow() -> MsFlags {
    MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)
}

/// Map a propagation name (`rslave`, `private`, ...) to its flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = p(&["rbind", "ro", "rprivate"]);
        assert!(o.bind);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(p(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(p(&["nodev", "dev"]).flags, MsFlags::empty());
    }

    #[test]
    fn unsupported_extensions_are_refused() {
        assert!(parse(&["tmpcopyup".to_string()]).is_err());
        assert!(parse(&["rro".to_string()]).is_err());
        let e = parse(&["idmap=uids=0-1000-1".to_string()]).unwrap_err();
        assert!(e.to_string().contains("uidMappings"), "{e}");
    }

    #[test]
    fn idmap_options() {
        let o = p(&["bind", "ro"]);
        assert_eq!(o.idmap, None);
        let o = p(&["rbind", "idmap", "ro"]);
        assert_eq!(o.idmap, Some(Idmap::Top));
        // Neither is a mount(2) flag nor fs data.
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data, "");
        assert_eq!(p(&["ridmap"]).idmap, Some(Idmap::Recursive));
        assert_eq!(p(&["ridmap", "idmap"]).idmap, Some(Idmap::Top));
        assert!(KNOWN.contains(&"idmap") && KNOWN.contains(&"ridmap"));
    }
}
