//! `pull`: the OCI distribution API through oci-client (anonymous, Basic and Bearer-token auth;
//! HTTPS, and HTTP for loopback or configured registries). Layers are fetched in parallel,
//! written to the content store and unpacked while they download; each is verified twice
//! (compressed digest, diffID). An interrupted download resumes with HTTP Range from the bytes
//! on disk. The name is recorded only when every layer is in place, so an interrupted pull
//! never leaves a half image behind.
//!
//! Mirrors ([`crate::hosts`]): the tag is resolved on the first host that can (capability
//! `resolve`), then the content is fetched from the first host that serves it (capability
//! `pull`), each failing host (down, 404, wrong bytes) handing over to the next; what one host
//! delivered stays (it is verified by digest). An error at the end names every host tried.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_spec::image::Descriptor;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::apply::{apply_layer, LayerTarget};
use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::hosts::Endpoint;
use crate::manifest::{self, Parsed};
use crate::meta::ImageRecord;
use crate::platform::Platform;
use crate::progress::{Event, LayerState, Progress};
use crate::reference::{is_loopback_registry, ImageRef};
use crate::store::Store;
use crate::unpack::{Compression, Limits};

#[cfg(test)]
mod memory_tests;

const MAX_MANIFEST: usize = 4 << 20;
const ATTEMPTS: u32 = 5;
/// Pieces of at most [`PIECE`] bytes queued per layer for its unpacking thread; the socket's
/// own buffer keeps the stream flowing while the queue is full.
const CHUNKS_IN_FLIGHT: usize = 4;
const PIECE: usize = 64 << 10;

pub struct PullOptions {
    pub platform: Platform,
    /// Use plain HTTP for this registry even if it isn't configured insecure.
    pub insecure: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            insecure: false,
        }
    }
}

fn registry_err(ctx: &Ctx, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        registry: ctx.endpoint.host.clone(),
        reason: e.to_string(),
    }
}

/// A configured client for the reference's registry, and the credentials to present.
pub fn client_for(
    reference: &ImageRef,
    config: &Config,
    insecure: bool,
) -> Result<(Client, RegistryAuth)> {
    let registry = reference.registry();
    let cas = config.ca_certs(registry)?;
    // Loopback registries speak plain HTTP (as docker allows), unless a CA is configured for
    // them in certs.d: then they are expected to speak TLS.
    let http = insecure
        || (is_loopback_registry(registry) && cas.is_empty())
        || config.insecure_registries.iter().any(|r| r == registry);
    let extra_root_certificates = cas
        .into_iter()
        .map(|data| Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        })
        .collect();
    let client = Client::new(ClientConfig {
        protocol: if http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates,
        ..base_client_config(config)
    });
    let auth = match config.credentials(registry)? {
        Some((user, pass)) => RegistryAuth::Basic(user, pass),
        None => RegistryAuth::Anonymous,
    };
    Ok((client, auth))
}

/// What every registry client shares.
fn base_client_config(config: &Config) -> ClientConfig {
    ClientConfig {
        max_concurrent_download: config.max_concurrent_downloads,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("barge/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    }
}

/// A client for one endpoint (its scheme, CAs, TLS checking, timeout, proxy) and the
/// credentials to present there: the registry's for the registry itself, a mirror's own.
pub(crate) fn endpoint_client(
    ep: &Endpoint,
    registry: &str,
    config: &Config,
) -> Result<(Client, RegistryAuth)> {
    let mut extra_root_certificates = Vec::new();
    for path in &ep.ca {
        extra_root_certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: std::fs::read(path).ctx("read CA certificate", path)?,
        });
    }
    let base = base_client_config(config);
    let client = Client::try_from(ClientConfig {
        protocol: if ep.http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates,
        accept_invalid_certificates: ep.skip_verify,
        connect_timeout: ep.dial_timeout.or(base.connect_timeout),
        http_proxy: ep.proxy.clone(),
        https_proxy: ep.proxy.clone(),
        ..base
    })
    .map_err(|e| {
        Error::invalid(
            format!("registry host {} ({})", ep.url(), ep.source),
            e.to_string(),
        )
    })?;
    let who = if ep.origin { registry } else { &ep.host };
    // Given credentials (`Config::given_credentials`) count for the registry itself only.
    let stored = config.credentials(who)?;
    let auth = match stored {
        Some((user, pass)) => RegistryAuth::Basic(user, pass),
        None => RegistryAuth::Anonymous,
    };
    Ok((client, auth))
}

struct Ctx {
    store: Arc<Store>,
    client: Client,
    /// The image as named (the name recorded, messages).
    reference: ImageRef,
    /// The host asked for it.
    endpoint: Endpoint,
    limits: Limits,
    progress: Arc<dyn Progress>,
}

impl Ctx {
    /// `image` as this context's host knows it.
    fn remote(&self, image: &ImageRef) -> Result<oci_spec::distribution::Reference> {
        self.endpoint.reference(image)
    }
}

/// Whether the next host may do better: this one failed (refused, 404, cut), sent wrong
/// bytes, or wants credentials the next one (a mirror, or the upstream) may not.
fn next_host_may_help(e: &Error) -> bool {
    matches!(
        e,
        Error::Registry { .. } | Error::DigestMismatch { .. } | Error::Unauthorized { .. }
    )
}

/// Pull `reference` into `store` and name it. Returns the new image record.
pub async fn pull(
    store: Arc<Store>,
    config: &Config,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<ImageRecord> {
    let endpoints = crate::hosts::endpoints(config, reference.registry(), opts.insecure)?;
    let lease = store.lease()?;
    // The name is recorded while the lease is held, so garbage collection can't run between
    // the last layer and the name. A failed pull's verified blobs are collected unless
    // something else uses them; partial downloads stay so that the next pull resumes them.
    let result = pull_from_hosts(&store, config, reference, opts, &progress, &endpoints)
        .await
        .and_then(|rec| {
            let moved = store.record_names(std::slice::from_ref(&rec))?;
            Ok((rec, moved))
        });
    let rec = store.finish_writing(lease, result, "the pull")?;
    store.emit(barge_events::Action::Pull, &rec.name, &rec.name);
    progress.event(Event::Done {
        reference: reference.canonical(),
        digest: rec.target.clone(),
    });
    Ok(rec)
}

/// Resolve on the first host that can, then fetch from the first host that serves the
/// content; the error names every host tried.
async fn pull_from_hosts(
    store: &Arc<Store>,
    config: &Config,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: &Arc<dyn Progress>,
    endpoints: &[Endpoint],
) -> Result<ImageRecord> {
    let mut tried: Vec<(String, Error)> = Vec::new();
    let mut failed = vec![false; endpoints.len()];
    // One client per host, kept from resolving to fetching (it holds the host's tokens).
    let mut clients: Vec<Option<(Arc<Ctx>, RegistryAuth)>> = vec![None; endpoints.len()];
    let make = |ep: &Endpoint| -> Result<(Arc<Ctx>, RegistryAuth)> {
        if let Some(why) = ep.unsupported() {
            return Err(Error::Registry {
                registry: ep.host.clone(),
                reason: format!("skipped: {why}"),
            });
        }
        let (client, auth) = endpoint_client(ep, reference.registry(), config)?;
        let ctx = Arc::new(Ctx {
            store: store.clone(),
            client,
            reference: reference.clone(),
            endpoint: ep.clone(),
            limits: config.limits.clone(),
            progress: progress.clone(),
        });
        Ok((ctx, auth))
    };
    // A name by digest needs no trusted resolver: any host that serves content will do.
    let by_digest = reference.digest().is_some();
    let mut resolved = None;
    for (i, ep) in endpoints.iter().enumerate() {
        let able = if by_digest {
            ep.capabilities.pull
        } else {
            ep.capabilities.resolve
        };
        if !able {
            continue;
        }
        let attempt = match make(ep) {
            Ok((ctx, auth)) => {
                let found = fetch_manifest(&ctx, reference, &auth).await;
                clients[i] = Some((ctx, auth));
                found
            }
            Err(e) => Err(e),
        };
        match attempt {
            Ok(found) => {
                resolved = Some(found);
                break;
            }
            // Nothing was written yet: whatever went wrong, the next host may do better.
            Err(e) => {
                failed[i] = true;
                tried.push((describe(ep), e));
            }
        }
    }
    let Some((bytes, target)) = resolved else {
        return Err(all_failed(reference, tried, "resolve"));
    };
    progress.event(Event::Resolved {
        reference: reference.canonical(),
        digest: target.clone(),
    });
    for (i, ep) in endpoints.iter().enumerate() {
        // A host that could not give the manifest is not asked for the rest.
        if !ep.capabilities.pull || failed[i] {
            continue;
        }
        let made = match clients[i].take() {
            Some(c) => Ok(c),
            None => make(ep),
        };
        let (ctx, auth) = match made {
            Ok(c) => c,
            Err(e) => {
                tried.push((describe(ep), e));
                continue;
            }
        };
        let attempt = pull_inner(
            &ctx,
            &auth,
            opts,
            config.max_concurrent_downloads,
            bytes.clone(),
            target.clone(),
        )
        .await;
        match attempt {
            Ok(rec) => return Ok(rec),
            Err(e) if next_host_may_help(&e) => tried.push((describe(ep), e)),
            Err(e) => return Err(e),
        }
    }
    Err(all_failed(reference, tried, "pull"))
}

/// An error and its causes (`error sending request: ...: Connection refused`).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        next = cause.source();
    }
    out
}

/// A host for messages: its URL, and where it was configured unless it is the registry itself.
pub(crate) fn describe(ep: &Endpoint) -> String {
    if ep.origin && ep.source.starts_with("the registry ") {
        ep.url()
    } else {
        format!("{} ({})", ep.url(), ep.source)
    }
}

/// The error when no host could do it: with one host its own error, else every host's.
fn all_failed(reference: &ImageRef, mut tried: Vec<(String, Error)>, what: &str) -> Error {
    if tried.len() == 1 {
        if let Some((_, e)) = tried.pop() {
            return e;
        }
    }
    if tried.is_empty() {
        return Error::Registry {
            registry: reference.registry().to_string(),
            reason: format!(
                "no configured host may {what} {} (see capabilities in its hosts.toml)",
                reference.canonical()
            ),
        };
    }
    let denied = tried
        .iter()
        .all(|(_, e)| matches!(e, Error::Unauthorized { .. }));
    let list: Vec<String> = tried
        .into_iter()
        .map(|(host, e)| format!("{host}: {e}"))
        .collect();
    let reason = format!(
        "could not {what} {} from any of its {} hosts: {}",
        reference.canonical(),
        list.len(),
        list.join("; ")
    );
    let registry = reference.registry().to_string();
    if denied {
        return Error::Unauthorized { registry, reason };
    }
    Error::Registry { registry, reason }
}

async fn fetch_manifest(
    ctx: &Ctx,
    reference: &ImageRef,
    auth: &RegistryAuth,
) -> Result<(Vec<u8>, Digest)> {
    let remote = ctx.remote(reference)?;
    let (bytes, _) = ctx
        .client
        .pull_manifest_raw(&remote, auth, manifest::ACCEPTED)
        .await
        .map_err(|e| {
            let reason = format!(
                "fetching manifest of {}: {}",
                reference.canonical(),
                with_causes(&e)
            );
            match e {
                // Credentials missing or refused: the caller must tell this apart (the API's
                // 401, CRI's Unauthenticated), not a registry that is down.
                oci_client::errors::OciDistributionError::AuthenticationFailure(_)
                | oci_client::errors::OciDistributionError::UnauthorizedError { .. } => {
                    Error::Unauthorized {
                        registry: ctx.endpoint.host.clone(),
                        reason,
                    }
                }
                _ => registry_err(ctx, reason),
            }
        })?;
    if bytes.len() > MAX_MANIFEST {
        return Err(Error::invalid(
            format!("manifest of {}", reference.canonical()),
            format!("{} bytes, larger than {MAX_MANIFEST}", bytes.len()),
        ));
    }
    let digest = Digest::of(&bytes);
    if let Some(want) = reference.digest() {
        if want != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {}", reference.canonical()),
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    Ok((bytes.to_vec(), digest))
}

async fn pull_inner(
    ctx: &Arc<Ctx>,
    auth: &RegistryAuth,
    opts: &PullOptions,
    parallel: usize,
    bytes: Vec<u8>,
    target: Digest,
) -> Result<ImageRecord> {
    let reference = &ctx.reference;
    let store = &ctx.store;
    let (manifest_bytes, manifest_digest) = match manifest::parse(&bytes, None, target.as_str())? {
        Parsed::Index(index) => {
            let desc = manifest::select(&index, &opts.platform, &reference.canonical())?;
            let child = manifest::digest_of(desc)?;
            let (child_bytes, child_digest) =
                fetch_manifest(ctx, &reference.with_digest(&child), auth).await?;
            store.content.write(&bytes, Some(&target))?;
            (child_bytes, child_digest)
        }
        Parsed::Manifest(_) => (bytes, target.clone()),
    };
    let Parsed::Manifest(image_manifest) =
        manifest::parse(&manifest_bytes, None, manifest_digest.as_str())?
    else {
        return Err(Error::invalid(
            format!("manifest {manifest_digest}"),
            "an index inside an index",
        ));
    };

    // The config: small, fetched whole and verified.
    let config_digest = manifest::digest_of(image_manifest.config())?;
    if !store.content.exists(&config_digest) {
        let mut data = Vec::new();
        let remote = ctx.remote(reference)?;
        ctx.client
            .store_auth_if_needed(remote.resolve_registry(), auth)
            .await;
        ctx.client
            .pull_blob(&remote, config_digest.as_str(), &mut data)
            .await
            .map_err(|e| {
                registry_err(
                    ctx,
                    format!("fetching config {config_digest}: {}", with_causes(&e)),
                )
            })?;
        store.content.write(&data, Some(&config_digest))?;
    }
    let config_bytes = store.content.read(&config_digest)?;
    let (_, diff_ids) = manifest::parse_config(&config_bytes, config_digest.as_str())?;
    let layers = image_manifest.layers();
    if diff_ids.len() != layers.len() {
        return Err(Error::invalid(
            format!("image {}", reference.canonical()),
            format!(
                "manifest has {} layers but the config lists {} diff IDs",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let chain = crate::snapshot::chain_ids(&diff_ids);

    // Every layer in parallel (bounded), each downloaded, unpacked and committed on its own.
    // When one fails the others are cancelled and awaited, so that nothing is still writing
    // when the failed pull's leftovers are collected.
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let (cancel, cancelled) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut digests = Vec::with_capacity(layers.len());
    for (i, desc) in layers.iter().enumerate() {
        let job = LayerJob {
            desc: desc.clone(),
            digest: manifest::digest_of(desc)?,
            diff_id: diff_ids[i].clone(),
            chain: chain[i].clone(),
            parent: i.checked_sub(1).map(|p| chain[p].clone()),
            cancelled: cancelled.clone(),
        };
        digests.push(job.digest.clone());
        ctx.progress.event(Event::Layer {
            digest: job.digest.clone(),
            state: LayerState::Waiting,
        });
        let ctx = ctx.clone();
        let sem = sem.clone();
        let auth = auth.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let digest = job.digest.clone();
            if *job.cancelled.borrow() {
                return (digest, Ok(()));
            }
            (digest, layer(&ctx, &auth, job).await)
        });
    }
    let mut first_err: Option<(Option<Digest>, Error)> = None;
    while let Some(joined) = tasks.join_next().await {
        let (digest, res) = match joined {
            Ok((d, r)) => (Some(d), r),
            Err(e) => (None, Err(Error::invalid("layer task", e.to_string()))),
        };
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some((digest, e));
                let _ = cancel.send(true);
            }
        }
    }
    if let Some((failed, e)) = first_err {
        // Keep the partial download of the layer that failed (the next pull resumes it);
        // those of the layers cancelled with it would only hold space.
        for d in digests.iter().filter(|d| Some(*d) != failed.as_ref()) {
            if let Err(err) = store.content.discard_partial(d) {
                tracing::warn!("removing the partial download of {d}: {err}");
            }
        }
        return Err(e);
    }
    store
        .content
        .write(&manifest_bytes, Some(&manifest_digest))?;
    Ok(ImageRecord {
        name: reference.canonical(),
        target,
        manifest: manifest_digest,
        config: config_digest,
        tagged: crate::meta::now(),
    })
}

struct LayerJob {
    desc: Descriptor,
    digest: Digest,
    diff_id: Digest,
    chain: Digest,
    parent: Option<Digest>,
    /// Set when another layer failed: stop.
    cancelled: watch::Receiver<bool>,
}

/// Resolves once `rx` says the pull is cancelled (never, if the sender is gone).
async fn until_cancelled(rx: &watch::Receiver<bool>) {
    let mut rx = rx.clone();
    if rx.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A failure of this machine (a system call failing: disk full, read-only, quota; the
/// database), not of the bytes or the network (those reach us as errors without an errno):
/// retrying, reading on or asking another host won't help.
fn is_local(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.raw_os_error().is_some(),
        Error::Db { .. } => true,
        Error::Layer { source, .. } => is_local(source),
        _ => false,
    }
}

fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Registry { .. })
}

async fn layer(ctx: &Arc<Ctx>, auth: &RegistryAuth, job: LayerJob) -> Result<()> {
    let store = &ctx.store;
    let committed = store.snapshots.committed(job.chain.as_str())?;
    let have_blob = store.content.exists(&job.digest);
    if committed && have_blob {
        ctx.progress.event(Event::Layer {
            digest: job.digest.clone(),
            state: LayerState::Exists,
        });
        return Ok(());
    }
    let compression =
        Compression::from_media_type(job.desc.media_type().as_ref()).ok_or_else(|| {
            Error::invalid(
                format!("layer {}", job.digest),
                format!("media type {}", job.desc.media_type()),
            )
        })?;
    let job = Arc::new(job);
    if have_blob {
        // Downloaded before, never unpacked (or the unpacked copy was lost).
        let (ctx2, job2) = (ctx.clone(), job.clone());
        tokio::task::spawn_blocking(move || {
            let file = ctx2.store.content.open_blob(&job2.digest)?;
            extract(&ctx2, &job2, compression, file)
        })
        .await
        .map_err(|e| Error::invalid("unpack task", e.to_string()))??;
    } else {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match download(ctx, auth, &job, compression, !committed).await {
                Ok(()) => break,
                Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                    ctx.progress.event(Event::Layer {
                        digest: job.digest.clone(),
                        state: LayerState::Retrying {
                            attempt,
                            error: e.to_string(),
                        },
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500 << attempt)) => {}
                        _ = until_cancelled(&job.cancelled) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    ctx.progress.event(Event::Layer {
        digest: job.digest.clone(),
        state: LayerState::Complete,
    });
    Ok(())
}

fn extract(ctx: &Ctx, job: &LayerJob, compression: Compression, reader: impl Read) -> Result<()> {
    let what = format!("{} of {}", job.digest, ctx.reference.canonical());
    let target = LayerTarget {
        what: &what,
        diff_id: &job.diff_id,
        chain: &job.chain,
        parent: job.parent.as_ref(),
    };
    apply_layer(&ctx.store, &ctx.limits, &target, compression, reader)
}

/// Reads the chunks the network task sends; an `Err` item is the network failing.
/// The failure is sticky: once the network failed, every later read fails too (a reader
/// that saw EOF after the error would take a truncated blob for a whole one).
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
    failed: Option<String>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if let Some(msg) = &self.failed {
                return Err(std::io::Error::other(msg.clone()));
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => self.failed = Some(e.to_string()),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Writes everything read through it into the blob being ingested; a failed write (a full
/// disk) is kept as the store's own error.
struct TeeToIngest<'a, R> {
    inner: R,
    ingest: &'a mut crate::content::Ingest,
    error: Option<Error>,
}

impl<R: Read> Read for TeeToIngest<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.ingest.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(msg));
        }
        Ok(n)
    }
}

/// Queue `chunk` as copies of at most [`PIECE`] bytes. The chunk shares hyper's read buffer
/// (up to ~400 KB when the network outruns the disk): queued as it is, every chunk waiting
/// kept a whole buffer alive and made hyper allocate another (64 queued chunks a layer held
/// tens of MB). Dropped here, the buffer is free for the next read. False if the worker is gone.
async fn send_copied(
    tx: &mpsc::Sender<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
) -> bool {
    for piece in chunk.chunks(PIECE) {
        if tx
            .send(Ok(bytes::Bytes::copy_from_slice(piece)))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

async fn download(
    ctx: &Arc<Ctx>,
    auth: &RegistryAuth,
    job: &Arc<LayerJob>,
    compression: Compression,
    unpack_it: bool,
) -> Result<()> {
    let size = job.desc.size();
    let (ctx2, job2) = (ctx.clone(), job.clone());
    let mut ingest =
        tokio::task::spawn_blocking(move || ctx2.store.content.ingest(&job2.digest, Some(size)))
            .await
            .map_err(|e| Error::invalid("ingest task", e.to_string()))??;
    let offset = ingest.offset();
    let remote = ctx.remote(&ctx.reference)?;
    ctx.client
        .store_auth_if_needed(remote.resolve_registry(), auth)
        .await;
    let response = if size == offset && offset > 0 {
        None
    } else {
        Some(
            ctx.client
                .pull_blob_stream_partial(&remote, job.digest.as_str(), offset, None)
                .await
                .map_err(|e| {
                    registry_err(
                        ctx,
                        format!("fetching layer {}: {}", job.digest, with_causes(&e)),
                    )
                })?,
        )
    };
    let (stream, restart) = match response {
        None => (None, false),
        Some(oci_client::client::BlobResponse::Partial(s)) => (Some(s), false),
        Some(oci_client::client::BlobResponse::Full(s)) => (Some(s), offset > 0),
    };
    let start = if restart { 0 } else { offset };
    if start > 0 {
        ctx.progress.event(Event::Layer {
            digest: job.digest.clone(),
            state: LayerState::Resuming { from: start },
        });
    }
    let (tx, rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(CHUNKS_IN_FLIGHT);
    let (ctx2, job2) = (ctx.clone(), job.clone());
    let worker = tokio::task::spawn_blocking(move || -> Result<()> {
        if restart {
            ingest.restart()?;
        }
        let existing = ingest.existing()?;
        let unpacked = {
            let net = ChannelReader {
                rx,
                current: bytes::Bytes::new(),
                failed: None,
            };
            let mut reader = existing.chain(TeeToIngest {
                inner: net,
                ingest: &mut ingest,
                error: None,
            });
            let unpacked = if unpack_it {
                extract(&ctx2, &job2, compression, &mut reader)
            } else {
                Ok(())
            };
            if let Some(e) = reader.get_mut().1.error.take() {
                return Err(e);
            }
            if unpacked.as_ref().is_err_and(is_local) {
                return unpacked;
            }
            // Read what is left, also after a failed unpack: with the whole blob on disk its
            // digest decides whether the bytes were wrong (then that is the error) or the
            // layer itself is bad.
            if let Err(e) = std::io::copy(&mut reader, &mut std::io::sink()) {
                return Err(match reader.get_mut().1.error.take() {
                    Some(store_error) => store_error,
                    None => Error::Registry {
                        registry: ctx2.endpoint.host.clone(),
                        reason: format!("layer {}: {e}", job2.digest),
                    },
                });
            }
            unpacked
        };
        ingest.commit()?;
        unpacked
    });

    let mut net_error = None;
    if let Some(mut stream) = stream {
        let total = size;
        let mut done = start;
        let mut last_report = 0u64;
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = until_cancelled(&job.cancelled) => {
                    let msg = "cancelled: another layer failed";
                    let _ = tx.send(Err(std::io::Error::other(msg))).await;
                    net_error = Some(Error::invalid(format!("layer {}", job.digest), msg));
                    break;
                }
            };
            let Some(item) = next else { break };
            match item {
                Ok(chunk) => {
                    done += chunk.len() as u64;
                    if !send_copied(&tx, chunk).await {
                        break; // the worker failed; its error is reported below
                    }
                    if done - last_report >= 256 * 1024 || done == total {
                        last_report = done;
                        ctx.progress.event(Event::Layer {
                            digest: job.digest.clone(),
                            state: LayerState::Downloading { done, total },
                        });
                    }
                }
                Err(e) => {
                    let msg = format!("layer {} interrupted at byte {done}: {e}", job.digest);
                    let _ = tx.send(Err(std::io::Error::other(msg.clone()))).await;
                    net_error = Some(registry_err(ctx, msg));
                    break;
                }
            }
        }
    }
    drop(tx);
    ctx.progress.event(Event::Layer {
        digest: job.digest.clone(),
        state: LayerState::Extracting,
    });
    let result = worker
        .await
        .map_err(|e| Error::invalid("unpack task", e.to_string()))?;
    match (net_error, result) {
        (Some(net), Err(e)) if !is_local(&e) => Err(net),
        (_, r) => r,
    }
}
