//! ImageService: ListImages, ImageStatus, PullImage (with auth), RemoveImage, ImageFsInfo,
//! over the engine's image store and its registry helper.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use barge_engine::pull::{PullOptions, PullProgress};
use barge_engine::registry::proto::Credentials;
use barge_engine::Engine;
use barge_image::meta::ImageRecord;
use barge_image::reference::split_stored;
use base64::Engine as _;
use tonic::{Request, Response, Status};

use crate::proto::image_service_server::ImageService;
use crate::proto::*;
use crate::server::Cri;
use crate::status::{engine, image_error, CriResult};

/// The CRI image of the image (config digest) `rec` names, with all its names.
fn image_of(e: &Engine, rec: &ImageRecord) -> CriResult<Image> {
    let store = &e.images;
    let img = store.image(rec).map_err(image_error)?;
    let names = store.names_of(&rec.config).map_err(image_error)?;
    let tags: BTreeSet<String> = names
        .iter()
        .filter(|n| !n.name.contains('@') && !n.name.starts_with("<none>"))
        .map(|n| n.name.clone())
        .collect();
    let digests: BTreeSet<String> = names
        .iter()
        .map(|n| format!("{}@{}", split_stored(&n.name).0, n.target))
        .filter(|d| !d.starts_with("<none>"))
        .collect();
    let user = img
        .config
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .unwrap_or_default();
    let user = user.split(':').next().unwrap_or("").to_string();
    let (uid, username) = match user.parse::<i64>() {
        Ok(n) => (Some(Int64Value { value: n }), String::new()),
        Err(_) if user.is_empty() => (None, String::new()),
        Err(_) => (None, user),
    };
    Ok(Image {
        id: rec.config.to_string(),
        repo_tags: tags.into_iter().collect(),
        repo_digests: digests.into_iter().collect(),
        size: store.size(&img).map_err(image_error)?,
        uid,
        username,
        spec: Some(ImageSpec {
            image: rec.config.to_string(),
            ..Default::default()
        }),
        pinned: false,
    })
}

/// The image a spec names, if stored.
fn find(e: &Engine, name: &str) -> CriResult<Option<ImageRecord>> {
    if name.is_empty() {
        return Err(Status::invalid_argument(
            "image spec: the image name is empty",
        ));
    }
    match e.images.resolve(name) {
        Ok(r) => Ok(Some(r)),
        Err(barge_image::Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(image_error(err)),
    }
}

/// Credentials from a CRI AuthConfig: username + password, or `auth` (base64 of
/// `user:password`). Identity and registry tokens are refused (the registry helper takes
/// user/password credentials).
fn credentials(a: &AuthConfig) -> CriResult<Option<Credentials>> {
    if !a.identity_token.is_empty() || !a.registry_token.is_empty() {
        return Err(Status::invalid_argument(
            "pull auth: identity_token and registry_token are not supported (give username/password or auth)",
        ));
    }
    let (user, pass) = if !a.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| Status::invalid_argument(format!("pull auth: auth is not base64: {e}")))?;
        let s = String::from_utf8(raw)
            .map_err(|_| Status::invalid_argument("pull auth: auth is not UTF-8"))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("pull auth: auth is not user:password"))?;
        (u.to_string(), p.to_string())
    } else {
        (a.username.clone(), a.password.clone())
    };
    if user.is_empty() && pass.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user,
        password: pass,
        server: a.server_address.clone(),
    }))
}

/// One filesystem's usage (the store's directory) for ImageFsInfo.
fn fs_usage(path: &std::path::Path) -> FilesystemUsage {
    let (bytes, inodes) = usage(path);
    FilesystemUsage {
        timestamp: crate::time::now_nanos(),
        fs_id: Some(FilesystemIdentifier {
            mountpoint: path.display().to_string(),
        }),
        used_bytes: Some(UInt64Value { value: bytes }),
        inodes_used: Some(UInt64Value { value: inodes }),
    }
}

/// Bytes and inodes under `p` (not following symlinks, each inode once).
fn usage(p: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![p.to_path_buf()];
    let (mut bytes, mut inodes) = (0u64, 0u64);
    while let Some(d) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        inodes += 1;
        bytes += md.blocks() * 512;
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    (bytes, inodes)
}

#[tonic::async_trait]
impl ImageService for Cri {
    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let want = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .filter(|s| !s.is_empty());
        let images = self
            .blocking(move |e| {
                let only = match &want {
                    Some(name) => match find(e, name)? {
                        Some(r) => Some(r.config),
                        None => return Ok(Vec::new()),
                    },
                    None => None,
                };
                let mut by_id: BTreeMap<String, ImageRecord> = BTreeMap::new();
                for rec in e.images.db.images().map_err(image_error)? {
                    if only.as_ref().is_some_and(|c| *c != rec.config) {
                        continue;
                    }
                    by_id.entry(rec.config.to_string()).or_insert(rec);
                }
                // An image whose blobs went missing is left out rather than failing the list.
                Ok(by_id.values().filter_map(|r| image_of(e, r).ok()).collect())
            })
            .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        req: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let name = req.image.map(|i| i.image).unwrap_or_default();
        let verbose = req.verbose;
        let resp = self
            .blocking(move |e| {
                let Some(rec) = find(e, &name)? else {
                    // CRI: an image that is not there is no error, just no image.
                    return Ok(ImageStatusResponse::default());
                };
                let mut info = HashMap::new();
                if verbose {
                    let doc = engine(barge_engine::docker::image::inspect(&e.images, &rec))?;
                    info.insert("info".to_string(), doc.to_string());
                }
                Ok(ImageStatusResponse {
                    image: Some(image_of(e, &rec)?),
                    info,
                })
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn pull_image(
        &self,
        req: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let req = req.into_inner();
        let name = req.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "PullImage: the image name is empty",
            ));
        }
        barge_image::reference::ImageRef::parse(&name).map_err(|e| {
            Status::invalid_argument(format!("PullImage: invalid image reference {name:?}: {e}"))
        })?;
        let auth = match &req.auth {
            Some(a) => credentials(a)?,
            None => None,
        };
        let image_ref = self
            .blocking(move |e| {
                let mut opts = PullOptions {
                    platform: None,
                    insecure: false,
                    auth,
                    progress: PullProgress::Quiet,
                };
                let pulled = engine(e.pull(&name, &mut opts))?;
                let rec = e.images.resolve(&pulled.name).map_err(image_error)?;
                Ok(rec.config.to_string())
            })
            .await?;
        Ok(Response::new(PullImageResponse { image_ref }))
    }

    async fn remove_image(
        &self,
        req: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let name = req.into_inner().image.map(|i| i.image).unwrap_or_default();
        self.blocking(move |e| {
            let Some(rec) = find(e, &name)? else {
                // Removing an image that is not there succeeds (CRI: idempotent).
                return Ok(());
            };
            // Every name of the image goes: CRI removes the image, not one tag.
            for n in e.images.names_of(&rec.config).map_err(image_error)? {
                match e.images.remove(&n.name, false) {
                    Ok(_) | Err(barge_image::Error::NotFound { .. }) => {}
                    Err(err) => return Err(image_error(err)),
                }
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let resp = self
            .blocking(|e| {
                let root = e.images.root().to_path_buf();
                Ok(ImageFsInfoResponse {
                    image_filesystems: vec![fs_usage(&root.join("snapshots"))],
                    container_filesystems: vec![fs_usage(&e.paths.containers())],
                })
            })
            .await?;
        Ok(Response::new(resp))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auth_forms() {
        let a = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p:w"),
            ..Default::default()
        };
        let c = credentials(&a).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        let a = AuthConfig {
            registry_token: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(&a).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(credentials(&AuthConfig::default()).unwrap().is_none());
    }
}
