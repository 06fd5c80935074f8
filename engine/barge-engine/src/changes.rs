//! `docker diff`: what a container changed in its root file system, read from its
//! snapshot's overlay upper directory (whiteouts are deletions; a path that exists in a
//! lower layer is a change, any other an addition).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::Engine;

/// docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute in the container (`/etc/passwd`).
    pub path: String,
    pub kind: ChangeKind,
}

/// Mount points the engine makes for its own bind mounts: not the container's changes
/// (docker leaves them out too).
const ENGINE_FILES: &[&str] = &["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// The upper and lower directories of an overlay mount's options.
fn overlay_dirs(options: &[String]) -> Option<(PathBuf, Vec<PathBuf>)> {
    let mut upper = None;
    let mut lowers = Vec::new();
    for o in options {
        if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(u));
        } else if let Some(l) = o.strip_prefix("lowerdir=") {
            lowers = l.split(':').map(PathBuf::from).collect();
        }
    }
    upper.map(|u| (u, lowers))
}

/// Walk `dir` (relative path `rel`) of the upper directory, recording its changes.
fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) -> Result<()> {
    let dir = upper.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::Io {
        what: "read the container's changes in",
        path: dir.clone(),
        source: e,
    })?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        let path = format!("/{}", r.display());
        if ENGINE_FILES.contains(&path.as_str()) {
            continue;
        }
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.push(Change {
                path,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let in_lower = lowers.iter().any(|l| l.join(&r).symlink_metadata().is_ok());
        out.push(Change {
            path,
            kind: if in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
        });
        if md.is_dir() {
            walk(upper, &r, lowers, out)?;
        }
    }
    Ok(())
}

impl Engine {
    /// The changes container `key` made to its image's file system.
    pub fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let rec = self.db.find(key)?;
        let mounts = self.images.snapshots.mounts(&rec.id)?;
        let (upper, lowers) = mounts
            .iter()
            .find_map(|m| match m.kind.as_str() {
                "overlay" => overlay_dirs(&m.options),
                _ => Some((PathBuf::from(&m.source), Vec::new())),
            })
            .ok_or_else(|| Error::Record(format!("container {}: no snapshot mount", rec.id)))?;
        let mut out = Vec::new();
        walk(&upper, Path::new(""), &lowers, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_upper_and_lowers() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("u"), t.path().join("l"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        std::fs::write(upper.join("new"), "n").unwrap();
        let mut out = Vec::new();
        walk(&upper, Path::new(""), &[lower], &mut out).unwrap();
        let got: Vec<(&str, ChangeKind)> = out.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            [
                ("/etc", ChangeKind::Modified),
                ("/etc/passwd", ChangeKind::Modified),
                ("/new", ChangeKind::Added)
            ]
        );
    }
}
