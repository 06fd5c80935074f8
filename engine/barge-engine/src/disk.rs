//! Disk usage of the store (`docker system df`, `GET /system/df`): images, containers'
//! writable layers, volumes (barge has no build cache yet).

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::Engine;

/// The bytes under `p` (files' lengths, symlinks not followed); 0 if it is gone.
pub fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// One image (config digest) and what it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUsage {
    /// `sha256:…`.
    pub id: String,
    /// Its stored names.
    pub names: Vec<String>,
    /// Unpacked layers, bytes.
    pub size: u64,
    /// Containers made from it.
    pub containers: usize,
    /// Created (unix seconds), 0 if unknown.
    pub created: i64,
}

/// One container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerUsage {
    pub id: String,
    pub name: String,
    pub image: String,
    /// Bytes written in its writable layer.
    pub size_rw: u64,
    /// Running (or paused, restarting).
    pub active: bool,
    pub state: String,
}

/// One volume's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeUsage {
    pub name: String,
    pub size: u64,
    /// Containers that mount it.
    pub ref_count: usize,
}

/// Everything `system df` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    /// Always 0 until barge builds images.
    pub build_cache: u64,
}

/// Total, active, size and reclaimable bytes of one kind (a `system df` row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row {
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

impl DiskUsage {
    pub fn images_row(&self) -> Row {
        let mut r = Row {
            total: self.images.len(),
            ..Default::default()
        };
        for i in &self.images {
            r.size += i.size;
            if i.containers > 0 {
                r.active += 1;
            } else {
                r.reclaimable += i.size;
            }
        }
        r
    }

    pub fn containers_row(&self) -> Row {
        let mut r = Row {
            total: self.containers.len(),
            ..Default::default()
        };
        for c in &self.containers {
            r.size += c.size_rw;
            if c.active {
                r.active += 1;
            } else {
                r.reclaimable += c.size_rw;
            }
        }
        r
    }

    pub fn volumes_row(&self) -> Row {
        let mut r = Row {
            total: self.volumes.len(),
            ..Default::default()
        };
        for v in &self.volumes {
            r.size += v.size;
            if v.ref_count > 0 {
                r.active += 1;
            } else {
                r.reclaimable += v.size;
            }
        }
        r
    }
}

impl Engine {
    /// The bytes in a container's writable layer.
    pub fn container_size_rw(&self, id: &str) -> u64 {
        self.images
            .snapshots
            .get(id)
            .map(|s| dir_size(&self.images.snapshots.fs_dir(s.id)))
            .unwrap_or(0)
    }

    /// What images, containers and volumes take on disk.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let containers = self.list(true)?;
        let mut out = DiskUsage::default();
        for rec in self.images.db.images()? {
            let id = rec.config.to_string();
            if let Some(i) = out.images.iter_mut().find(|i| i.id == id) {
                i.names.push(rec.name.clone());
                continue;
            }
            let (size, created) = match self.images.image(&rec) {
                Ok(img) => (
                    self.images.size(&img).unwrap_or(0),
                    img.config
                        .created()
                        .as_deref()
                        .and_then(crate::docker::time::parse_rfc3339)
                        .unwrap_or(0),
                ),
                Err(_) => (0, 0),
            };
            out.images.push(ImageUsage {
                containers: containers
                    .iter()
                    .filter(|(r, _)| r.config.image_id == id)
                    .count(),
                id,
                names: vec![rec.name.clone()],
                size,
                created,
            });
        }
        for (rec, st) in &containers {
            out.containers.push(ContainerUsage {
                size_rw: self.container_size_rw(&rec.id),
                id: rec.id.clone(),
                name: rec.name.clone(),
                image: rec.config.image.clone(),
                active: st.state.is_active(),
                state: st.state.as_str().to_string(),
            });
        }
        for v in self.db.volumes()? {
            out.volumes.push(VolumeUsage {
                size: dir_size(&self.volume_path(&v.name)),
                ref_count: self.volume_users(&v.name)?.len(),
                name: v.name,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_active_and_reclaimable() {
        let du = DiskUsage {
            volumes: vec![
                VolumeUsage {
                    name: "a".into(),
                    size: 10,
                    ref_count: 1,
                },
                VolumeUsage {
                    name: "b".into(),
                    size: 5,
                    ref_count: 0,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            du.volumes_row(),
            Row {
                total: 2,
                active: 1,
                size: 15,
                reclaimable: 5
            }
        );
        assert_eq!(du.images_row(), Row::default());
    }

    #[test]
    fn disk_usage_of_a_store() {
        let (_dir, engine) = crate::testing::engine();
        engine
            .volume_create("v1", Default::default(), false)
            .unwrap();
        std::fs::write(engine.volume_path("v1").join("f"), [0u8; 1000]).unwrap();
        crate::testing::container(&engine, "c1", 1, Default::default());
        let du = engine.disk_usage().unwrap();
        assert_eq!(du.volumes.len(), 1);
        assert_eq!(du.volumes[0].size, 1000);
        assert_eq!(du.volumes[0].ref_count, 0);
        assert_eq!(du.containers.len(), 1);
        assert!(!du.containers[0].active);
        assert!(du.images.is_empty());
    }
}
