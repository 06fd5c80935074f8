//! `docker import`: a single-layer image from a rootfs tarball. The tarball is streamed once:
//! decompressed, hashed (its diffID), gzip-compressed into the content store; then unpacked
//! from the stored blob like any other layer.

use std::io::{self, Read, Write};

use serde_json::{json, Map, Value};

use super::changes::apply_changes;
use super::{oci_manifest, sniffed, LayerDesc};
use crate::apply::{apply_layer, LayerTarget};
use crate::config::Config;
use crate::content::Ingest;
use crate::digest::HashReader;
use crate::error::{Error, Result};
use crate::manifest::OCI_LAYER_GZIP;
use crate::meta::ImageRecord;
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::store::Store;
use crate::unpack::Compression;

pub struct ImportOptions {
    /// Dockerfile instructions setting config fields (`--change 'CMD ["sh"]'`).
    pub changes: Vec<String>,
    /// The history comment (`--message`).
    pub message: Option<String>,
    pub platform: Platform,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            changes: Vec::new(),
            message: None,
            platform: Platform::host(),
        }
    }
}

/// Make an image named `name` from the rootfs tarball `reader` (plain, gzip or zstd: sniffed).
pub fn import(
    store: &Store,
    config: &Config,
    reader: impl Read,
    name: &str,
    opts: &ImportOptions,
) -> Result<ImageRecord> {
    let reference = ImageRef::parse(name)?;
    if reference.digest().is_some() {
        return Err(Error::invalid(
            format!("image name {name:?}"),
            "an imported image can't be named by a digest",
        ));
    }
    // The changes are checked before anything is read.
    let mut container_config = Map::new();
    apply_changes(&mut container_config, &opts.changes)?;
    let lease = store.lease()?;
    let result = import_locked(store, config, reader, &reference, opts, container_config);
    let rec = store.finish_writing(lease, result, "the failed import")?;
    store.emit(
        barge_events::Action::Import,
        &rec.config.to_string(),
        &rec.name,
    );
    Ok(rec)
}

fn import_locked(
    store: &Store,
    config: &Config,
    reader: impl Read,
    reference: &ImageRef,
    opts: &ImportOptions,
    container_config: Map<String, Value>,
) -> Result<(ImageRecord, bool)> {
    let mut content = AnyData {
        inner: sniffed(reader, "rootfs tarball")?,
        seen: false,
    };
    let mut tarball = HashReader::new(&mut content);
    let mut ingest = store.content.ingest_unknown()?;
    if let Err(e) = compress_into(&mut tarball, &mut ingest) {
        ingest.abort();
        return Err(e);
    }
    let (diff_id, _) = tarball.finish();
    // Nothing but zeros (the end-of-archive blocks), or nothing at all: no file, no image.
    if !content.seen {
        ingest.abort();
        return Err(Error::invalid(
            "rootfs tarball",
            "it is empty (no files): nothing to import",
        ));
    }
    let layer = ingest.commit()?;

    let created = now_rfc3339();
    let mut history = json!({"created": created, "created_by": "barge import"});
    if let Some(m) = &opts.message {
        history["comment"] = json!(m);
    }
    let mut image_config = json!({
        "created": created,
        "architecture": opts.platform.architecture,
        "os": opts.platform.os,
        "config": Value::Object(container_config),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [history],
    });
    if let Some(v) = &opts.platform.variant {
        image_config["variant"] = json!(v);
    }
    let config_bytes = serde_json::to_vec(&image_config).map_err(|e| {
        Error::invalid(
            format!("image config for {}", reference.canonical()),
            e.to_string(),
        )
    })?;
    let config_digest = store.content.write(&config_bytes, None)?;
    let layer_desc = LayerDesc {
        media_type: OCI_LAYER_GZIP,
        size: store.content.size(&layer)?,
        digest: layer.clone(),
    };
    let manifest_bytes = oci_manifest(&config_digest, config_bytes.len() as u64, &[layer_desc])?;
    let manifest = store.content.write(&manifest_bytes, None)?;

    // One layer: its chain ID is its diffID. apply_layer checks the diffID again.
    if !store.snapshots.committed(diff_id.as_str())? {
        let what = format!("{layer} of {}", reference.canonical());
        let target = LayerTarget {
            what: &what,
            diff_id: &diff_id,
            chain: &diff_id,
            parent: None,
        };
        apply_layer(
            store,
            &config.limits,
            &target,
            Compression::Gzip,
            store.content.open_blob(&layer)?,
        )?;
    }
    let record = ImageRecord {
        name: reference.canonical(),
        target: manifest.clone(),
        manifest,
        config: config_digest,
        tagged: crate::meta::now(),
    };
    let moved = store.record_names(std::slice::from_ref(&record))?;
    Ok((record, moved))
}

/// Notes whether anything but zero bytes went through (a tar header is never all zeros).
struct AnyData<R> {
    inner: R,
    seen: bool,
}

impl<R: Read> Read for AnyData<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.seen && buf[..n].iter().any(|&b| b != 0) {
            self.seen = true;
        }
        Ok(n)
    }
}

/// Writes into a blob being ingested, keeping the store's own error for the report.
struct IngestWriter<'a> {
    ingest: &'a mut Ingest,
    error: Option<Error>,
}

impl Write for IngestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.ingest.write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(e);
                Err(io::Error::other(msg))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// gzip (fast level) everything `reader` gives into `ingest`.
fn compress_into(reader: &mut impl Read, ingest: &mut Ingest) -> Result<()> {
    let mut enc = flate2::write::GzEncoder::new(
        IngestWriter {
            ingest,
            error: None,
        },
        flate2::Compression::fast(),
    );
    let copied = io::copy(reader, &mut enc);
    let finished = copied.and_then(|_| enc.try_finish());
    match finished {
        Ok(()) => Ok(()),
        Err(e) => Err(match enc.get_mut().error.take() {
            Some(store_error) => store_error,
            None => Error::invalid("rootfs tarball", format!("reading it: {e}")),
        }),
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds (`2025-06-01T09:01:34.123456789Z`).
fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), "2025-06-01T09:01:34.123456789Z".len(), "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
