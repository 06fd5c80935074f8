//! CRI log paths: a container's `log_path` is relative to its sandbox's `log_directory` and
//! must stay inside it (kubelet's layout: /var/log/pods/NS_NAME_UID/CONTAINER/N.log).

use std::path::{Component, Path, PathBuf};

use tonic::Status;

/// A sandbox's `log_directory`: absolute, no `..`.
pub fn check_directory(dir: &str) -> Result<(), Status> {
    let p = Path::new(dir);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Status::invalid_argument(format!(
            "sandbox log_directory {dir:?}: must be an absolute path without \"..\""
        )));
    }
    Ok(())
}

/// The host path of a container's log: `log_path` under `dir`. Refused: a sandbox without a
/// log directory, an absolute `log_path`, one with `..` or empty, and one whose existing
/// directories lead out of `dir` through a symlink. The directories on the way are created.
pub fn resolve(dir: Option<&str>, log_path: &str) -> Result<PathBuf, Status> {
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        return Err(Status::invalid_argument(format!(
            "container log_path {log_path:?}: the sandbox has no log_directory"
        )));
    };
    check_directory(dir)?;
    let rel = Path::new(log_path);
    let clean = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if log_path.is_empty() || !clean || rel.file_name().is_none() {
        return Err(Status::invalid_argument(format!(
            "container log_path {log_path:?}: must be a relative file path inside the sandbox's log_directory {dir:?} (no \"..\", not absolute)"
        )));
    }
    let full = Path::new(dir).join(rel);
    let parent = full.parent().unwrap_or(Path::new(dir));
    std::fs::create_dir_all(parent)
        .map_err(|e| Status::internal(format!("create log directory {}: {e}", parent.display())))?;
    let real_dir = std::fs::canonicalize(dir)
        .map_err(|e| Status::internal(format!("log directory {dir}: {e}")))?;
    let real_parent = std::fs::canonicalize(parent)
        .map_err(|e| Status::internal(format!("log directory {}: {e}", parent.display())))?;
    if !real_parent.starts_with(&real_dir) {
        return Err(Status::invalid_argument(format!(
            "container log_path {log_path:?}: leads out of the log directory {dir:?} (through a symlink)"
        )));
    }
    if std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Status::invalid_argument(format!(
            "container log_path {log_path:?}: is a symlink"
        )));
    }
    Ok(full)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        let d = std::env::temp_dir().join(format!("barge-cri-logpath-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ds = d.to_str().unwrap();
        assert!(resolve(Some(ds), "c/0.log").unwrap().starts_with(&d));
        for bad in ["../x.log", "/etc/passwd", "", "c/../../x", "."] {
            let e = resolve(Some(ds), bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}: {e:?}");
        }
        std::os::unix::fs::symlink("/tmp", d.join("out")).unwrap();
        let e = resolve(Some(ds), "out/x.log").unwrap_err();
        assert!(e.message().contains("symlink"), "{e:?}");
        assert!(resolve(None, "x.log").is_err());
        assert!(check_directory("rel/dir").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
