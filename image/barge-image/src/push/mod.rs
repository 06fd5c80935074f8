//! `push`: a stored image to a registry (docker push). The image's blobs (layers in parallel,
//! then the config) go up first, each skipped when the registry has it, mounted when another
//! repository of the same registry has it, uploaded otherwise ([`upload`]); the manifest, as
//! stored (OCI or Docker media type, the very bytes, so the digest is the same), is put last,
//! by tag. An image pulled as a multi-platform index whose every platform is stored is pushed
//! as that index (its manifests by digest first). Nothing names the image on the registry
//! before every blob is there, so a failed push leaves no half image behind (only blobs,
//! which the next push reuses).
//!
//! Hosts: the first host of the registry allowed to push (containerd's `push` capability in
//! `hosts.toml`; docker's `registry-mirrors` never are) — normally the registry itself.

mod session;
pub mod upload;

use std::sync::Arc;

use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Parsed};
use crate::progress::{Event, LayerState, Progress};
use crate::reference::ImageRef;
use crate::store::Store;
use session::RegistrySession;
use upload::{push_blob, BlobJob, Outcome};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Plain HTTP for this registry even if it isn't configured insecure.
    pub insecure: bool,
    /// Bytes per upload request ([`upload::CHUNK`] by default).
    pub chunk_size: u64,
    /// Blobs uploaded at once.
    pub parallel: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            insecure: false,
            chunk_size: upload::CHUNK,
            parallel: 3,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `registry/repository:tag` pushed to.
    pub reference: String,
    pub tag: String,
    /// The digest of the manifest (or index) put by tag.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Per blob (layers and configs): how it got there.
    pub blobs: Vec<(Digest, Outcome)>,
}

/// One manifest to put and the blobs it needs.
struct ManifestPlan {
    digest: Digest,
    media_type: String,
    bytes: Vec<u8>,
    /// (digest, size, is a layer).
    blobs: Vec<(Digest, u64, bool)>,
}

/// Push the stored image `local` (a name or ID as [`Store::resolve`] takes it) to `target`
/// (`registry/repository[:tag]`, `latest` when no tag is given).
pub async fn push(
    store: Arc<Store>,
    config: &Config,
    local: &str,
    target: &ImageRef,
    opts: &PushOptions,
    progress: Arc<dyn Progress>,
) -> Result<Pushed> {
    if target.digest().is_some() {
        return Err(Error::invalid(
            format!("push target {}", target.canonical()),
            "push to a tag, not a digest (the registry computes the digest)",
        ));
    }
    let tag = target.tag().unwrap_or("latest").to_string();
    // Keeps garbage collection from removing blobs while they are read.
    let _lease = store.lease()?;
    let record = store.resolve(local)?;
    let plans = plan(&store, &record.target, &record.manifest)?;
    // Other repositories of the registry this image is known under: blobs may be mounted
    // from there.
    let mount_from: Vec<String> = store
        .names_of(&record.config)?
        .into_iter()
        .filter_map(|r| ImageRef::parse(&r.name).ok())
        .filter(|r| r.registry() == target.registry() && r.repository() != target.repository())
        .map(|r| r.repository().to_string())
        .fold(Vec::new(), |mut v, r| {
            if !v.contains(&r) {
                v.push(r);
            }
            v
        });

    let endpoints = crate::hosts::endpoints(config, target.registry(), opts.insecure)?;
    let ep = endpoints
        .iter()
        .find(|e| e.capabilities.push && e.unsupported().is_none())
        .ok_or_else(|| Error::Registry {
            registry: target.registry().to_string(),
            reason: "no configured host may push (see capabilities in its hosts.toml)".into(),
        })?;
    progress.event(Event::PushStarted {
        repository: target.repo_name(),
    });
    let session = Arc::new(RegistrySession::open(ep, config, target).await?);

    // Every blob of every manifest, once; layers reported, configs not.
    let mut jobs: Vec<BlobJob> = Vec::new();
    for p in &plans {
        for (digest, size, layer) in &p.blobs {
            if jobs.iter().any(|j| &j.digest == digest) {
                continue;
            }
            if !store.content.exists(digest) {
                return Err(Error::NotFound {
                    what: "blob",
                    name: format!("{digest} of {} (the store lost it)", record.name),
                });
            }
            jobs.push(BlobJob {
                digest: digest.clone(),
                size: *size,
                mount_from: mount_from.clone(),
                report: *layer,
                chunk: opts.chunk_size,
            });
        }
    }
    for j in jobs.iter().filter(|j| j.report) {
        progress.event(Event::Layer {
            digest: j.digest.clone(),
            state: LayerState::Preparing,
        });
    }
    let blobs = push_blobs(&session, &store, jobs, opts.parallel, &progress).await?;

    // Manifests: children (by digest) before the one named by the tag (the last plan).
    let mut top = None;
    let count = plans.len();
    for (i, p) in plans.into_iter().enumerate() {
        let last = i + 1 == count;
        let reference = if last {
            tag.clone()
        } else {
            p.digest.to_string()
        };
        let size = p.bytes.len() as u64;
        let given = session
            .put_manifest(&reference, &p.media_type, p.bytes)
            .await?;
        if let Some(g) = given {
            if g != p.digest.as_str() {
                return Err(Error::DigestMismatch {
                    what: format!("manifest put to {}", target.repo_name()),
                    expected: p.digest.to_string(),
                    actual: g,
                });
            }
        }
        if last {
            top = Some((p.digest, size));
        }
    }
    let (digest, size) = top.ok_or_else(|| Error::invalid("image", "nothing to push"))?;
    progress.event(Event::Done {
        reference: target.canonical(),
        digest: digest.clone(),
    });
    Ok(Pushed {
        reference: target.canonical(),
        tag,
        digest,
        size,
        blobs,
    })
}

/// All blobs, `parallel` at a time, started in the plan's order (layers first, then the
/// config); the first failure stops the rest.
async fn push_blobs(
    session: &Arc<RegistrySession>,
    store: &Arc<Store>,
    jobs: Vec<BlobJob>,
    parallel: usize,
    progress: &Arc<dyn Progress>,
) -> Result<Vec<(Digest, Outcome)>> {
    let mut tasks = tokio::task::JoinSet::new();
    let order: Vec<Digest> = jobs.iter().map(|j| j.digest.clone()).collect();
    let mut waiting = jobs.into_iter();
    let mut spawn_next = |tasks: &mut tokio::task::JoinSet<_>| {
        if let Some(job) = waiting.next() {
            let (session, store, progress) = (session.clone(), store.clone(), progress.clone());
            tasks.spawn(async move {
                let out = push_blob(&session, &store, &job, &progress).await;
                (job.digest, out)
            });
        }
    };
    for _ in 0..parallel.max(1) {
        spawn_next(&mut tasks);
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (digest, out) = joined.map_err(|e| Error::invalid("upload task", e.to_string()))?;
        match out {
            Ok(o) => {
                done.push((digest, o));
                spawn_next(&mut tasks);
            }
            Err(e) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Err(Error::Layer {
                    layer: digest.to_string(),
                    source: Box::new(e),
                });
            }
        }
    }
    done.sort_by_key(|(d, _)| order.iter().position(|o| o == d));
    Ok(done)
}

/// What to put: the stored index with all its platforms when every one is stored, else the
/// image's own manifest. The manifest named by the tag comes last.
fn plan(store: &Store, target: &Digest, own: &Digest) -> Result<Vec<ManifestPlan>> {
    if target != own && store.content.exists(target) {
        let bytes = store.content.read(target)?;
        if let Parsed::Index(index) = manifest::parse(&bytes, None, target.as_str())? {
            let mut plans = Vec::new();
            let mut complete = true;
            for desc in index.manifests() {
                let d = manifest::digest_of(desc)?;
                match manifest_plan(store, &d) {
                    Ok(Some(p)) => plans.push(p),
                    _ => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                plans.push(ManifestPlan {
                    digest: target.clone(),
                    media_type: media_type_of(&bytes, manifest::OCI_INDEX),
                    bytes,
                    blobs: Vec::new(),
                });
                return Ok(plans);
            }
        }
    }
    match manifest_plan(store, own)? {
        Some(p) => Ok(vec![p]),
        None => Err(Error::NotFound {
            what: "manifest",
            name: own.to_string(),
        }),
    }
}

/// An image manifest and its blobs, if it and they are all stored.
fn manifest_plan(store: &Store, digest: &Digest) -> Result<Option<ManifestPlan>> {
    if !store.content.exists(digest) {
        return Ok(None);
    }
    let bytes = store.content.read(digest)?;
    let Parsed::Manifest(m) = manifest::parse(&bytes, None, digest.as_str())? else {
        return Err(Error::invalid(
            format!("manifest {digest}"),
            "an index inside an index",
        ));
    };
    let mut blobs = Vec::new();
    for layer in m.layers() {
        blobs.push((manifest::digest_of(layer)?, layer.size(), true));
    }
    blobs.push((manifest::digest_of(m.config())?, m.config().size(), false));
    if blobs.iter().any(|(d, _, _)| !store.content.exists(d)) {
        return Ok(None);
    }
    Ok(Some(ManifestPlan {
        digest: digest.clone(),
        media_type: media_type_of(&bytes, manifest::OCI_MANIFEST),
        bytes,
        blobs,
    }))
}

/// The `mediaType` the manifest declares, else `default` (OCI manifests may omit it).
fn media_type_of(bytes: &[u8], default: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
        .unwrap_or_else(|| default.to_string())
}
