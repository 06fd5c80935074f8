//! BlobUpload: one blob from the content store to a repository. The registry is asked first
//! (HEAD: a blob it has is not sent), then asked to mount the blob from another repository of
//! the same registry that has it (no bytes sent), and only then is it uploaded: chunked
//! (`PATCH` with `Content-Range`, [`CHUNK`] bytes at a time, streamed from the file), then
//! closed with `PUT ?digest=`. A chunk that fails on the way (connection cut, 5xx) is followed
//! by `GET` on the upload's URL: the upload continues from the offset the registry reports
//! (`Range: 0-N`). A registry that lost the upload (or will not say) gets a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::session::RegistrySession;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::progress::{Event, LayerState, Progress};
use crate::store::Store;

/// Bytes per PATCH request.
pub const CHUNK: u64 = 8 << 20;
/// Failures tolerated per blob before the push fails.
const ATTEMPTS: u32 = 5;
/// Bytes read from the file per piece of a request body.
const PIECE: usize = 64 << 10;

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was there already.
    Exists,
    /// Linked from this other repository.
    Mounted(String),
    /// Sent.
    Uploaded,
}

/// One blob to send.
pub(crate) struct BlobJob {
    pub digest: Digest,
    pub size: u64,
    /// Repositories of the same registry that may have it (tried for a mount, in order).
    pub mount_from: Vec<String>,
    /// Report progress for it (layers do; the config doesn't, as in docker).
    pub report: bool,
    pub chunk: u64,
}

pub(crate) async fn push_blob(
    s: &RegistrySession,
    store: &Arc<Store>,
    job: &BlobJob,
    progress: &Arc<dyn Progress>,
) -> Result<Outcome> {
    let report = |state: LayerState| {
        if job.report {
            progress.event(Event::Layer {
                digest: job.digest.clone(),
                state,
            });
        }
    };
    if s.blob_exists(&job.digest).await? {
        report(LayerState::RemoteExists);
        return Ok(Outcome::Exists);
    }
    let mut location = None;
    for from in job.mount_from.iter().filter(|f| **f != s.repository) {
        match try_mount(s, &job.digest, from).await? {
            Mount::Done => {
                report(LayerState::Mounted { from: from.clone() });
                return Ok(Outcome::Mounted(from.clone()));
            }
            Mount::Upload(url) => {
                location = Some(url);
                break;
            }
            Mount::Refused => {}
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => start(s, &job.digest).await?,
    };
    let path = store.content.path(&job.digest);
    let mut file = tokio::fs::File::open(&path).await.ctx("open blob", &path)?;
    let mut offset = 0u64;
    let mut failures = 0u32;
    let sent = Arc::new(AtomicU64::new(0));
    report(LayerState::Pushing {
        done: 0,
        total: job.size,
    });
    while offset < job.size {
        let len = job.chunk.max(1).min(job.size - offset);
        let attempt = patch(
            s, &location, &mut file, &path, offset, len, job, progress, &sent,
        )
        .await;
        match attempt {
            Ok(next) => {
                location = next;
                offset += len;
            }
            Err(e) if is_transient(&e) && failures + 1 < ATTEMPTS => {
                failures += 1;
                report(LayerState::Retrying {
                    attempt: failures,
                    error: e.to_string(),
                });
                tokio::time::sleep(Duration::from_millis(200 << failures)).await;
                match status(s, &location).await {
                    Ok((next, have)) if have <= job.size => {
                        location = next;
                        offset = have;
                    }
                    // The registry lost the upload, or won't say where it is: a new one.
                    _ => {
                        location = start(s, &job.digest).await?;
                        offset = 0;
                    }
                }
                report(LayerState::Resuming { from: offset });
            }
            Err(e) => return Err(e),
        }
    }
    finish(s, location, &job.digest).await?;
    report(LayerState::Pushed);
    Ok(Outcome::Uploaded)
}

/// Worth another try: the network or the registry failed, not the credentials or the input.
fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Registry { .. })
}

enum Mount {
    Done,
    /// Not mounted, but an upload was started instead (its URL).
    Upload(Url),
    /// Not allowed or not known (a token without pull rights on the source, say).
    Refused,
}

async fn try_mount(s: &RegistrySession, digest: &Digest, from: &str) -> Result<Mount> {
    let what = format!("mounting {digest} from {from}");
    let mut url = s.url("/blobs/uploads/")?;
    url.query_pairs_mut()
        .append_pair("mount", digest.as_str())
        .append_pair("from", from);
    let resp = s
        .send(&what, Method::POST, url, HeaderMap::new(), None)
        .await?;
    match resp.status() {
        StatusCode::CREATED => Ok(Mount::Done),
        StatusCode::ACCEPTED => Ok(Mount::Upload(s.location(&what, &resp)?)),
        _ => Ok(Mount::Refused),
    }
}

/// A new upload (POST); its URL.
async fn start(s: &RegistrySession, digest: &Digest) -> Result<Url> {
    let what = format!("starting the upload of {digest} to {}", s.repository);
    let url = s.url("/blobs/uploads/")?;
    let resp = s
        .send(&what, Method::POST, url, HeaderMap::new(), None)
        .await?;
    let resp = s.expect(&what, resp, &[StatusCode::ACCEPTED]).await?;
    s.location(&what, &resp)
}

/// Where an upload stands: its (new) URL and how many bytes the registry has.
async fn status(s: &RegistrySession, location: &Url) -> Result<(Url, u64)> {
    let what = "asking for the upload's status";
    let resp = s
        .send(what, Method::GET, location.clone(), HeaderMap::new(), None)
        .await?;
    let resp = s
        .expect(what, resp, &[StatusCode::NO_CONTENT, StatusCode::OK])
        .await?;
    let next = s.location(what, &resp).unwrap_or_else(|_| location.clone());
    let have = resp
        .headers()
        .get("Range")
        .and_then(|v| v.to_str().ok())
        .map(parse_range_end)
        .unwrap_or(Some(0))
        .ok_or_else(|| Error::Registry {
            registry: s.host.clone(),
            reason: format!("{what}: bad Range header"),
        })?;
    Ok((next, have))
}

/// The bytes a registry has from its `Range: 0-N` (inclusive end): N+1. Registries answer
/// `0-0` for an empty upload as well as for one byte; taken as empty (a mismatch makes the
/// next PATCH fail and the upload start over).
fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim().trim_start_matches("bytes=");
    let (start, end) = v.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

/// Send bytes `offset..offset+len` of the blob; the next URL of the upload.
#[allow(clippy::too_many_arguments)]
async fn patch(
    s: &RegistrySession,
    location: &Url,
    file: &mut tokio::fs::File,
    path: &std::path::Path,
    offset: u64,
    len: u64,
    job: &BlobJob,
    progress: &Arc<dyn Progress>,
    sent: &Arc<AtomicU64>,
) -> Result<Url> {
    let what = format!(
        "uploading bytes {offset}-{} of {}",
        offset + len - 1,
        job.digest
    );
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .ctx("seek in blob", path)?;
    // The body streams from the file; a read error ends it (the request fails).
    let reader = file.try_clone().await.ctx("open blob", path)?.take(len);
    sent.store(offset, Ordering::SeqCst);
    let state = BodyState {
        reader,
        sent: sent.clone(),
        last: offset,
        total: job.size,
        digest: job.digest.clone(),
        progress: job.report.then(|| progress.clone()),
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let mut buf = vec![0u8; PIECE];
        match st.reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                let done = st.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if let Some(p) = &st.progress {
                    if done - st.last >= 256 << 10 || done == st.total {
                        st.last = done;
                        p.event(Event::Layer {
                            digest: st.digest.clone(),
                            state: LayerState::Pushing {
                                done,
                                total: st.total,
                            },
                        });
                    }
                }
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), st))
            }
            Err(e) => Some((Err(e), st)),
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("{offset}-{}", offset + len - 1)) {
        headers.insert("Content-Range", v);
    }
    let resp = s
        .send(
            &what,
            Method::PATCH,
            location.clone(),
            headers,
            Some(reqwest::Body::wrap_stream(stream)),
        )
        .await?;
    let resp = s.expect(&what, resp, &[StatusCode::ACCEPTED]).await?;
    s.location(&what, &resp)
}

struct BodyState {
    reader: tokio::io::Take<tokio::fs::File>,
    sent: Arc<AtomicU64>,
    last: u64,
    total: u64,
    digest: Digest,
    progress: Option<Arc<dyn Progress>>,
}

/// Close the upload (PUT with the digest): the registry checks the bytes against it.
async fn finish(s: &RegistrySession, mut location: Url, digest: &Digest) -> Result<()> {
    let what = format!("completing the upload of {digest}");
    location
        .query_pairs_mut()
        .append_pair("digest", digest.as_str());
    let resp = s
        .send(&what, Method::PUT, location, HeaderMap::new(), None)
        .await?;
    s.expect(&what, resp, &[StatusCode::CREATED, StatusCode::NO_CONTENT])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_range_end;

    #[test]
    fn range_ends() {
        assert_eq!(parse_range_end("0-999"), Some(1000));
        assert_eq!(parse_range_end("bytes=0-4"), Some(5));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
