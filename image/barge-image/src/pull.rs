//! `pull`: the OCI distribution API through oci-client (anonymous, Basic and Bearer-token auth;
//! HTTPS, and HTTP for loopback or configured registries). Layers are fetched in parallel,
//! written to the content store and unpacked while they download; each is verified twice
//! (compressed digest, diffID). An interrupted download resumes with HTTP Range from the bytes
//! on disk. The name is recorded only when every layer is in place, so an interrupted pull
//! never leaves a half image behind.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_spec::image::Descriptor;
use tokio::sync::{mpsc, Semaphore};

use crate::apply::{apply_layer, LayerTarget};
use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, Result};
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

fn registry_err(reference: &ImageRef, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        registry: reference.registry().to_string(),
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
        max_concurrent_download: config.max_concurrent_downloads,
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("barge/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    });
    let auth = match config.credentials(registry)? {
        Some((user, pass)) => RegistryAuth::Basic(user, pass),
        None => RegistryAuth::Anonymous,
    };
    Ok((client, auth))
}

struct Ctx {
    store: Arc<Store>,
    client: Client,
    reference: ImageRef,
    limits: Limits,
    progress: Arc<dyn Progress>,
}

/// Pull `reference` into `store` and name it. Returns the new image record.
pub async fn pull(
    store: Arc<Store>,
    config: &Config,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<ImageRecord> {
    let (client, auth) = client_for(reference, config, opts.insecure)?;
    let lease = store.lease()?;
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        client,
        reference: reference.clone(),
        limits: config.limits.clone(),
        progress,
    });
    // The name is recorded while the lease is held, so garbage collection can't run between
    // the last layer and the name. A failed pull's verified blobs are collected unless
    // something else uses them; partial downloads stay so that the next pull resumes them.
    let result = pull_inner(&ctx, &auth, opts, config.max_concurrent_downloads)
        .await
        .and_then(|rec| {
            let moved = store.record_names(std::slice::from_ref(&rec))?;
            Ok((rec, moved))
        });
    let rec = store.finish_writing(lease, result, "the pull")?;
    ctx.progress.event(Event::Done {
        reference: reference.canonical(),
        digest: rec.target.clone(),
    });
    Ok(rec)
}

async fn fetch_manifest(
    ctx: &Ctx,
    reference: &ImageRef,
    auth: &RegistryAuth,
) -> Result<(Vec<u8>, Digest)> {
    let (bytes, _) = ctx
        .client
        .pull_manifest_raw(&reference.oci(), auth, manifest::ACCEPTED)
        .await
        .map_err(|e| {
            registry_err(
                reference,
                format!("fetching manifest of {}: {e}", reference.canonical()),
            )
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
) -> Result<ImageRecord> {
    let reference = &ctx.reference;
    let (bytes, target) = fetch_manifest(ctx, reference, auth).await?;
    ctx.progress.event(Event::Resolved {
        reference: reference.canonical(),
        digest: target.clone(),
    });
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
        ctx.client
            .pull_blob(&reference.oci(), config_digest.as_str(), &mut data)
            .await
            .map_err(|e| {
                registry_err(reference, format!("fetching config {config_digest}: {e}"))
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
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, desc) in layers.iter().enumerate() {
        let job = LayerJob {
            desc: desc.clone(),
            digest: manifest::digest_of(desc)?,
            diff_id: diff_ids[i].clone(),
            chain: chain[i].clone(),
            parent: i.checked_sub(1).map(|p| chain[p].clone()),
        };
        ctx.progress.event(Event::Layer {
            digest: job.digest.clone(),
            state: LayerState::Waiting,
        });
        let ctx = ctx.clone();
        let sem = sem.clone();
        let auth = auth.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            layer(&ctx, &auth, job).await
        });
    }
    let mut first_err = None;
    while let Some(joined) = tasks.join_next().await {
        let res = joined.unwrap_or_else(|e| Err(Error::invalid("layer task", e.to_string())));
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some(e);
                tasks.abort_all();
            }
        }
    }
    if let Some(e) = first_err {
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
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
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

/// Writes everything read through it into the blob being ingested.
struct TeeToIngest<'a, R> {
    inner: R,
    ingest: &'a mut crate::content::Ingest,
}

impl<R: Read> Read for TeeToIngest<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ingest
            .write_all(&buf[..n])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
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
    ctx.client
        .store_auth_if_needed(ctx.reference.registry(), auth)
        .await;
    let response = if size == offset && offset > 0 {
        None
    } else {
        Some(
            ctx.client
                .pull_blob_stream_partial(&ctx.reference.oci(), job.digest.as_str(), offset, None)
                .await
                .map_err(|e| {
                    registry_err(
                        &ctx.reference,
                        format!("fetching layer {}: {e}", job.digest),
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
            });
            let unpacked = if unpack_it {
                extract(&ctx2, &job2, compression, &mut reader)
            } else {
                Ok(())
            };
            // Read what is left, also after a failed unpack: with the whole blob on disk its
            // digest decides whether the bytes were wrong (then that is the error) or the
            // layer itself is bad.
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::Registry {
                registry: ctx2.reference.registry().to_string(),
                reason: format!("layer {}: {e}", job2.digest),
            })?;
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
        while let Some(item) = stream.next().await {
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
                    net_error = Some(registry_err(&ctx.reference, msg));
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
        (Some(net), Err(_)) => Err(net),
        (_, r) => r,
    }
}
