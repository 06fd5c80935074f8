//! Mounts as data (what a snapshotter returns and the engine mounts as a container's rootfs),
//! and doing them.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One mount, in the shape of an OCI runtime spec mount without a destination (containerd's
/// `mount.Mount`): `overlay` with `lowerdir=`/`upperdir=`/`workdir=` options, or `bind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

impl Mount {
    /// Mount this at `target`.
    pub fn mount(&self, target: &Path) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::io(
                "mount",
                target,
                std::io::Error::new(
                    e.kind(),
                    format!("{} ({}): {e}", self.kind, self.options.join(",")),
                ),
            )
        };
        match self.kind.as_str() {
            "bind" => {
                let ro = self.options.iter().any(|o| o == "ro");
                mount(
                    Some(self.source.as_str()),
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| fail(e.into()))?;
                if ro {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
                        let _ = umount2(target, MntFlags::MNT_DETACH);
                        return Err(fail(e.into()));
                    }
                }
                Ok(())
            }
            "overlay" => {
                let data = self.options.join(",");
                let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                    .ok()
                    .flatten()
                    .unwrap_or(4096) as usize;
                if data.len() < page {
                    return mount(
                        Some(self.source.as_str()),
                        target,
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(data.as_str()),
                    )
                    .map_err(|e| fail(e.into()));
                }
                // Too long for one page: make every layer path relative to their common
                // directory and mount from there.
                let (dir, relative) = relative_options(&self.options).ok_or_else(|| {
                    Error::invalid(
                        format!("overlay mount at {}", target.display()),
                        "layer paths share no directory to shorten them against",
                    )
                })?;
                let data = relative.join(",");
                if data.len() >= page {
                    return Err(Error::invalid(
                        format!("overlay mount at {}", target.display()),
                        format!("{} bytes of options even with relative layer paths (limit {page}): too many layers", data.len()),
                    ));
                }
                crate::sys::mount_in_dir(&dir, &self.source, target, "overlay", &data).map_err(fail)
            }
            other => Err(Error::invalid(
                format!("mount type {other:?}"),
                "only overlay and bind mounts are produced by the snapshotter",
            )),
        }
    }
}

/// Mount `mounts` in order at `target`; on failure, undo the ones done.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = m.mount(target) {
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmount everything stacked at `target`.
pub fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                return umount2(target, MntFlags::MNT_DETACH)
                    .map_err(|e| Error::io("unmount", target, e.into()));
            }
            Err(e) => return Err(Error::io("unmount", target, e.into())),
        }
    }
}

/// Rewrite the path options (`lowerdir`, `upperdir`, `workdir`) relative to their longest
/// common directory.
fn relative_options(options: &[String]) -> Option<(PathBuf, Vec<String>)> {
    let mut paths: Vec<&Path> = Vec::new();
    for o in options {
        if let Some(v) = o.strip_prefix("lowerdir=") {
            paths.extend(v.split(':').map(Path::new));
        } else if let Some(v) = o
            .strip_prefix("upperdir=")
            .or_else(|| o.strip_prefix("workdir="))
        {
            paths.push(Path::new(v));
        }
    }
    let first = paths.first()?.parent()?;
    let common = first
        .ancestors()
        .find(|a| paths.iter().all(|p| p.starts_with(a)))?
        .to_path_buf();
    if common.as_os_str().is_empty() {
        return None;
    }
    let rel = |p: &str| -> String {
        Path::new(p)
            .strip_prefix(&common)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| p.to_string())
    };
    let out = options
        .iter()
        .map(|o| {
            if let Some(v) = o.strip_prefix("lowerdir=") {
                format!(
                    "lowerdir={}",
                    v.split(':').map(rel).collect::<Vec<_>>().join(":")
                )
            } else if let Some(v) = o.strip_prefix("upperdir=") {
                format!("upperdir={}", rel(v))
            } else if let Some(v) = o.strip_prefix("workdir=") {
                format!("workdir={}", rel(v))
            } else {
                o.clone()
            }
        })
        .collect();
    Some((common, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_for_long_options() {
        let opts = vec![
            "index=off".to_string(),
            "lowerdir=/var/lib/barge/snapshots/3/fs:/var/lib/barge/snapshots/12/fs".to_string(),
            "upperdir=/var/lib/barge/snapshots/13/fs".to_string(),
            "workdir=/var/lib/barge/snapshots/13/work".to_string(),
        ];
        let (dir, rel) = relative_options(&opts).unwrap();
        assert_eq!(dir, Path::new("/var/lib/barge/snapshots"));
        assert_eq!(rel[1], "lowerdir=3/fs:12/fs");
        assert_eq!(rel[2], "upperdir=13/fs");
        assert_eq!(rel[3], "workdir=13/work");
        assert_eq!(rel[0], "index=off");
    }
}
