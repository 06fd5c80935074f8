//! The image store: content, metadata and snapshots under one root (default /var/lib/barge),
//! and the image-level operations on them (resolve, tag, remove, list).

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{self, Parsed};
use crate::meta::{Db, ImageRecord};
use crate::reference::ImageRef;
use crate::snapshot::{chain_ids, Snapshotter};

pub struct Store {
    root: PathBuf,
    pub content: ContentStore,
    pub db: Arc<Db>,
    pub snapshots: Snapshotter,
}

/// An image with its manifest and config read and verified.
pub struct Image {
    pub record: ImageRecord,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub diff_ids: Vec<Digest>,
    /// Chain IDs of the layers, bottom first; the last is the snapshot a container builds on.
    pub chain: Vec<Digest>,
}

impl Image {
    /// The chain ID of the top layer: the parent of a container's snapshot.
    pub fn top(&self) -> Option<&Digest> {
        self.chain.last()
    }
}

/// Create `dir` (and its parents) or bring an existing one to mode 0700, and check that we
/// can use it. The store root is 0700 whatever mode it had (`mkdir -m 0755` or 0777 before
/// the first run): layers hold setuid binaries and device nodes, the database holds the
/// containers' environment (secrets), volumes hold their data; none of it is for the
/// host's other users. 0700 rather than docker's 0710: docker's group bit lets a
/// user-namespace-remapped root traverse the root, and barge does not remap users. A root
/// that is not ours to change or use is [`Error::PermissionDenied`], naming it.
pub fn secure_dir(dir: &Path, what: &'static str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let denied = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                path: dir.to_path_buf(),
            }
        } else {
            Error::io(what, dir, e)
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(denied)?;
    let mode = fs::metadata(dir).map_err(denied)?.permissions().mode();
    if mode & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(denied)?;
    }
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::R_OK
            | nix::unistd::AccessFlags::W_OK
            | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(|e| denied(e.into()))
}

/// While held (shared), garbage collection (exclusive) waits: it protects blobs and snapshots
/// that a pull or load has written but not yet named.
pub struct StoreLease {
    _file: File,
}

impl Store {
    /// Open or create the store. The root is 0700, also when it existed with another mode
    /// (see [`secure_dir`]).
    pub fn open(root: &Path) -> Result<Store> {
        secure_dir(root, "create store root")?;
        let db = Arc::new(Db::open(&root.join("barge.db"))?);
        Ok(Store {
            root: root.to_path_buf(),
            content: ContentStore::open(&root.join("content"))?,
            snapshots: Snapshotter::open(&root.join("snapshots"), db.clone())?,
            db,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.root.join("gc.lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open", path)
    }

    /// A lease that keeps garbage collection away while new content is being written.
    pub fn lease(&self) -> Result<StoreLease> {
        let file = self.lock_file()?;
        file.lock_shared().ctx("lock", self.root.join("gc.lock"))?;
        Ok(StoreLease { _file: file })
    }

    /// The exclusive lock garbage collection runs under; `None` if leases are held and
    /// `wait` is false.
    pub(crate) fn gc_lock(&self, wait: bool) -> Result<Option<File>> {
        let file = self.lock_file()?;
        if wait {
            file.lock().ctx("lock", self.root.join("gc.lock"))?;
        } else if file.try_lock().is_err() {
            return Ok(None);
        }
        Ok(Some(file))
    }

    /// Find an image by name (`busybox`, `busybox:1`, `reg/x@sha256:…`), by full ID
    /// (`sha256:<config>`), or by an unambiguous ID prefix (at least 4 hex characters).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        if let Ok(r) = ImageRef::parse(name) {
            if let Some(rec) = self.db.image(&r.canonical())? {
                return Ok(rec);
            }
            // `name@digest` may also mean "the image with this manifest digest".
            if let Some(d) = r.digest() {
                if let Some(rec) = self
                    .db
                    .images()?
                    .into_iter()
                    .find(|i| i.repo() == r.repo_name() && (i.target == d || i.manifest == d))
                {
                    return Ok(rec);
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let mut found: Vec<ImageRecord> = self
                .db
                .images()?
                .into_iter()
                .filter(|i| i.config.hex().starts_with(&hex))
                .collect();
            found.sort_by(|a, b| a.config.cmp(&b.config));
            let ids: std::collections::BTreeSet<&Digest> =
                found.iter().map(|i| &i.config).collect();
            if ids.len() > 1 {
                return Err(Error::invalid(
                    format!("image ID {name:?}"),
                    "ambiguous: it prefixes several image IDs",
                ));
            }
            if let Some(rec) = found.into_iter().next() {
                return Ok(rec);
            }
        }
        Err(Error::NotFound {
            what: "image",
            name: name.to_string(),
        })
    }

    /// Read and verify an image's manifest and config.
    pub fn image(&self, record: &ImageRecord) -> Result<Image> {
        let bytes = self.content.read(&record.manifest)?;
        let Parsed::Manifest(manifest) = manifest::parse(&bytes, None, record.manifest.as_str())?
        else {
            return Err(Error::invalid(
                format!("image {}", record.name),
                "its manifest is an index",
            ));
        };
        let config_bytes = self.content.read(&record.config)?;
        let (config, diff_ids) = manifest::parse_config(&config_bytes, record.config.as_str())?;
        let chain = chain_ids(&diff_ids);
        Ok(Image {
            record: record.clone(),
            manifest: *manifest,
            config,
            diff_ids,
            chain,
        })
    }

    /// Every name pointing at the image with config `id`.
    pub fn names_of(&self, id: &Digest) -> Result<Vec<ImageRecord>> {
        Ok(self
            .db
            .images()?
            .into_iter()
            .filter(|i| &i.config == id)
            .collect())
    }

    /// Give the image `source` the extra name `target` (docker tag).
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord> {
        let src = self.resolve(source)?;
        let r = ImageRef::parse(target)?;
        if r.digest().is_some() {
            return Err(Error::invalid(
                format!("tag {target:?}"),
                "a tag can't contain a digest",
            ));
        }
        let rec = ImageRecord {
            name: r.canonical(),
            tagged: crate::meta::now(),
            ..src
        };
        self.db.put_image(&rec)?;
        self.emit(
            barge_events::Action::Tag,
            &rec.config.to_string(),
            &rec.name,
        );
        Ok(rec)
    }

    /// Record an image event in the store's event journal (`<root>/events`, see
    /// `barge_events`). A journal that can't be written loses the event, with a warning.
    pub fn emit(&self, action: barge_events::Action, id: &str, name: &str) {
        let mut ev = barge_events::Event::now(barge_events::Type::Image, action, id);
        if !name.is_empty() {
            ev = ev.attr("name", name);
        }
        if let Err(e) = barge_events::Journal::in_store(self.root()).append(&ev) {
            tracing::warn!("image event {action} {id}: {e}");
        }
    }

    /// Is the top layer of an image used by a writable snapshot (a container)?
    pub fn users_of(&self, image: &Image) -> Result<Vec<String>> {
        let Some(top) = image.top() else {
            return Ok(Vec::new());
        };
        Ok(self
            .db
            .snapshots()?
            .into_iter()
            .filter(|s| {
                s.kind == crate::meta::SnapshotKind::Active
                    && s.parent.as_deref() == Some(top.as_str())
            })
            .map(|s| s.key)
            .collect())
    }

    /// Total size of an image: the bytes of its unpacked layers.
    pub fn size(&self, image: &Image) -> Result<u64> {
        let mut total = 0;
        for c in &image.chain {
            if let Some(s) = self.db.snapshot(c.as_str())? {
                total += s.size;
            }
        }
        Ok(total)
    }
}

impl ImageRecord {
    /// `registry/repo` of the name.
    pub fn repo(&self) -> &str {
        crate::reference::split_stored(&self.name).0
    }
}

/// What `remove` did, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

impl Store {
    /// docker rmi: a name is untagged; an ID untags all its names (several only with `force`).
    /// When no name is left the image is deleted, unless a container uses it (then an error,
    /// or with `force` the names go and the layers stay until the container does).
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let rec = self.resolve(name)?;
        let by_name =
            ImageRef::parse(name).is_ok_and(|r| r.canonical() == rec.name || r.digest().is_some());
        let names = self.names_of(&rec.config)?;
        let to_untag: Vec<ImageRecord> = if by_name {
            vec![rec.clone()]
        } else {
            let repos: std::collections::BTreeSet<&str> = names.iter().map(|n| n.repo()).collect();
            if repos.len() > 1 && !force {
                return Err(Error::InUse {
                    what: "image",
                    name: rec.config.short().to_string(),
                    by: format!("it is referenced in multiple repositories ({}); remove them by name or use --force", names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")),
                });
            }
            names.clone()
        };
        let last = to_untag.len() == names.len();
        if last && !force {
            let image = self.image(&rec)?;
            let users = self.users_of(&image)?;
            if !users.is_empty() {
                return Err(Error::InUse {
                    what: "image",
                    name: name.to_string(),
                    by: format!(
                        "used by container snapshot(s) {}; remove them first or use --force",
                        users.join(", ")
                    ),
                });
            }
        }
        let mut out = Vec::new();
        for r in &to_untag {
            self.db.delete_image(&r.name)?;
            self.emit(barge_events::Action::Untag, &r.config.to_string(), &r.name);
            out.push(Removed::Untagged(r.name.clone()));
        }
        if last {
            out.push(Removed::Deleted(rec.config.clone()));
            self.emit(barge_events::Action::Delete, &rec.config.to_string(), "");
            crate::gc::collect(self, false)?;
        }
        Ok(out)
    }
}

/// Naming what a pull, load or import wrote, and ending its lease.
impl Store {
    /// Record `records` (the caller still holds its lease: no garbage collection can run between
    /// the last layer and the names). On a failure the names set so far are put back as they were.
    /// Returns whether a name moved away from another image (whose content may now be garbage).
    pub(crate) fn record_names(&self, records: &[ImageRecord]) -> Result<bool> {
        let mut done: Vec<(&ImageRecord, Option<ImageRecord>)> = Vec::new();
        for rec in records {
            match self.db.put_image(rec) {
                Ok(old) => done.push((rec, old)),
                Err(e) => {
                    for (rec, old) in done.into_iter().rev() {
                        let undo = match old {
                            Some(old) => self.db.put_image(&old).map(|_| ()),
                            None => self.db.delete_image(&rec.name).map(|_| ()),
                        };
                        if let Err(u) = undo {
                            tracing::warn!(
                                "restoring image name {} after a failed write: {u}",
                                rec.name
                            );
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(done
            .iter()
            .any(|(rec, old)| old.as_ref().is_some_and(|o| o.config != rec.config)))
    }

    /// End a pull, load or import: release the lease, then collect garbage when `result` failed (what
    /// was written for it) or when `collect` asks for it (names moved, unused files stored). The
    /// result is returned unchanged.
    pub(crate) fn finish_writing<T>(
        &self,
        lease: StoreLease,
        result: Result<(T, bool)>,
        what: &str,
    ) -> Result<T> {
        drop(lease);
        let collect = match &result {
            Ok((_, collect)) => *collect,
            Err(_) => true,
        };
        if collect {
            if let Err(e) = crate::gc::collect(self, false) {
                tracing::warn!("cleaning up after {what}: {e}");
            }
        }
        result.map(|(value, _)| value)
    }
}
