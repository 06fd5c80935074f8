//! Image archives: `docker load` / `docker save` (docker-archive and OCI-archive tars, plain or
//! compressed) and `docker import` (a single-layer image from a rootfs tarball).
//!
//! Loads and imports hold a store lease from the first blob written until the names are
//! recorded, and clean up with garbage collection when they fail, so an interrupted or
//! refused archive never leaves a half image behind.

mod changes;
mod import;
mod load;
mod save;
mod scan;

use std::io::{self, Cursor, Read};

use serde_json::json;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::unpack::{decompress, Compression};

pub use import::{import, ImportOptions};
pub use load::load;
pub use save::save;

/// What `save` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// Both layouts in one tar, as docker ≥ 25 writes it: `manifest.json` for docker-archive
    /// readers and `oci-layout`/`index.json`/`blobs/` for OCI-archive readers.
    DockerArchive,
    /// Only the OCI image layout.
    OciArchive,
}

/// The annotation containerd (and docker ≥ 25) put the full image name in.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a tag in an image layout's `index.json`.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The name of an image loaded without one.
pub(crate) const UNTAGGED: &str = "<none>";

/// Sniff the compression of a stream from its first bytes (without seeking: they are read and
/// put back in front) and return the decompressed stream.
pub(crate) fn sniffed<'a, R: Read + 'a>(
    mut reader: R,
    what: &'static str,
) -> Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", what, e)),
        }
    }
    let compression = Compression::sniff(&head[..n]);
    decompress(Cursor::new(head[..n].to_vec()).chain(reader), compression)
}

/// The media type of an OCI layer blob compressed with `c`.
pub(crate) fn oci_layer_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => crate::manifest::OCI_LAYER_GZIP,
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// A layer of a manifest being built: media type, blob digest, blob size.
pub(crate) struct LayerDesc {
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
}

/// An OCI image manifest for `config` and `layers`, as JSON bytes.
pub(crate) fn oci_manifest(
    config: &Digest,
    config_size: u64,
    layers: &[LayerDesc],
) -> Result<Vec<u8>> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_MANIFEST,
        "config": {"mediaType": crate::manifest::OCI_CONFIG, "digest": config, "size": config_size},
        "layers": layers,
    });
    serde_json::to_vec(&manifest)
        .map_err(|e| Error::invalid(format!("manifest for config {config}"), e.to_string()))
}

/// The name an image without one is recorded under: `<none>@<manifest digest>`.
pub(crate) fn untagged_name(manifest: &Digest) -> String {
    format!("{UNTAGGED}@{manifest}")
}
