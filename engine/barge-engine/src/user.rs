//! `-u USER[:GROUP]` resolved against the container's /etc/passwd and /etc/group, as docker
//! does: names must exist there, numeric ids need not.

use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

fn read_db(rootfs: &Path, file: &str) -> Vec<Vec<String>> {
    // A symlinked /etc/passwd could point out of the rootfs: read it only if it is a file.
    let path = rootfs.join("etc").join(file);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => {}
        _ => return Vec::new(),
    }
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

pub fn resolve(rootfs: &Path, spec: &str) -> Result<User> {
    if spec.is_empty() {
        return resolve(rootfs, "0");
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_db(rootfs, "passwd");
    let groups = read_db(rootfs, "group");
    let entry = passwd.iter().find(|f| {
        f.len() >= 4 && (f[0] == user || (user.parse::<u32>().ok() == f[2].parse().ok()))
    });
    let (uid, mut gid, name) = match (user.parse::<u32>(), entry) {
        (Ok(uid), e) => (
            uid,
            e.and_then(|f| f[3].parse().ok()).unwrap_or(0),
            e.map(|f| f[0].clone()),
        ),
        (Err(_), Some(f)) => (
            f[2].parse()
                .map_err(|_| Error::Invalid(format!("user {user}: bad uid in /etc/passwd")))?,
            f[3].parse().unwrap_or(0),
            Some(f[0].clone()),
        ),
        (Err(_), None) => {
            return Err(Error::Invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, group) {
        for f in &groups {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_ids() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nweb:x:33:\nextra:x:50:web\n",
        )
        .unwrap();
        let r = |s| resolve(d.path(), s);
        assert_eq!(r("").unwrap().uid, 0);
        let w = r("web").unwrap();
        assert_eq!(
            (w.uid, w.gid, w.additional_gids.clone()),
            (33, 33, vec![50])
        );
        assert_eq!(r("1000").unwrap().gid, 0);
        assert_eq!(r("web:root").unwrap().gid, 0);
        assert_eq!(r("1000:7").unwrap().gid, 7);
        assert!(r("nobody").unwrap_err().to_string().contains("nobody"));
        assert!(r("web:nogroup").is_err());
    }
}
