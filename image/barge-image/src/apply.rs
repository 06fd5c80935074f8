//! Applying one layer: unpack its (compressed) bytes into a new snapshot, check the diffID,
//! flush it to disk and commit it under its chain ID. Shared by pull, load and import.

use std::io::Read;

use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::unpack::{self, Compression, Limits};

pub struct LayerTarget<'a> {
    /// For error messages: the layer's blob digest and the image.
    pub what: &'a str,
    pub diff_id: &'a Digest,
    pub chain: &'a Digest,
    pub parent: Option<&'a Digest>,
}

/// Unpack `reader` (a compressed layer) as snapshot `target.chain`. The reader is read to its
/// end. If the snapshot exists already (another process won the race) this copy is dropped.
pub fn apply_layer(
    store: &Store,
    limits: &Limits,
    target: &LayerTarget<'_>,
    compression: Compression,
    reader: impl Read,
) -> Result<()> {
    let ex = store.snapshots.begin_extract()?;
    let dir = ex.dir();
    let layer_err = |e: Error| Error::Layer {
        layer: target.what.to_string(),
        source: Box::new(e),
    };
    let mut hashed = HashReader::new(unpack::decompress(reader, compression).map_err(layer_err)?);
    let stats = unpack::unpack_layer(&mut hashed, &dir, limits).map_err(layer_err)?;
    std::io::copy(&mut hashed, &mut std::io::sink())
        .map_err(|e| layer_err(Error::io("read layer", &dir, e)))?;
    let (diff_id, _) = hashed.finish();
    if &diff_id != target.diff_id {
        return Err(Error::DigestMismatch {
            what: format!("uncompressed layer {} (diffID)", target.what),
            expected: target.diff_id.to_string(),
            actual: diff_id.to_string(),
        });
    }
    let f = std::fs::File::open(&dir).map_err(|e| Error::io("open", &dir, e))?;
    nix::unistd::syncfs(&f).map_err(|e| Error::io("syncfs", &dir, e.into()))?;
    store
        .snapshots
        .commit_extract(ex, target.chain, target.parent, stats.bytes)
}
