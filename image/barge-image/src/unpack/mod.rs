//! Layer extraction: a docker/OCI layer tar stream written into one directory (a snapshot's
//! overlayfs lower or upper dir), with nothing in the archive able to reach outside it.
//!
//! - Every filesystem operation is relative to a directory fd: parents are opened one component
//!   at a time with `openat(O_NOFOLLOW|O_DIRECTORY)` from an fd of the layer directory
//!   ([`path`]), leaves are made with `*at` calls on the parent fd. No path string is ever
//!   handed to the kernel to resolve, so no openat2 is needed.
//! - Names: leading `/` and `./` and `.` components are dropped (absolute names land inside the
//!   layer); `..` is resolved lexically and refused if it climbs above the layer root. A parent
//!   that is a symlink (wherever it points) or not a directory is refused.
//! - Hard links must point at a non-directory already extracted in this layer, found by the
//!   same walk. Symlinks are created as they are and never followed.
//! - Whiteouts become their overlayfs form ([`whiteout`]).
//! - Entry count and content size are checked against each header before anything is written
//!   ([`Limits`]), and tar headers are bounded in size.
//! - The stream is read to its end, after the end-of-archive marker too, so a caller hashing it
//!   through a tee sees every byte.

mod compress;
mod entry;
mod limits;
mod path;
mod pax;
mod remove;
mod whiteout;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub use compress::{decompress, Compression};
pub use limits::{Limits, UnpackStats};

use crate::error::{Error, IoContext, Result};
use entry::Extractor;
use limits::{MeterHandle, Metered, HEADER_BUDGET};

/// Extract an uncompressed layer tar stream into `dir`, an existing empty directory.
///
/// On error the directory holds a partial layer; the caller removes it.
pub fn unpack_layer<R: Read>(reader: R, dir: &Path, limits: &Limits) -> Result<UnpackStats> {
    let root = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
    .ctx("open layer directory", dir)?;
    let (metered, meter) = Metered::new(reader, HEADER_BUDGET);
    let mut archive = tar::Archive::new(metered);
    let x = Extractor::new(root);
    let stats = extract_all(&mut archive, x, &meter, limits)?;

    // Whatever follows the end-of-archive marker (zero blocks, usually) is read too, and counts
    // against the size limit.
    let rest = archive.into_inner().into_inner();
    let allowed = limits.max_bytes.saturating_sub(stats.bytes);
    let n = io::copy(&mut rest.take(allowed.saturating_add(1)), &mut io::sink())
        .ctx("read layer stream after the end of the archive", dir)?;
    if stats.bytes.saturating_add(n) > limits.max_bytes {
        return Err(limits.size_exceeded());
    }
    Ok(stats)
}

/// How [`unpack_copy`] treats what it extracts over.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
}

/// Extract a plain tar stream (`docker cp` into a container) into the directory `dir` (an
/// fd the caller opened safely), over what is there, with the same confinement as a layer:
/// nothing in the archive reaches outside `dir`, no symlink on the way is followed. Names
/// starting `.wh.` are ordinary files here. Returns the entries and bytes written.
pub fn unpack_copy<R: Read>(
    reader: R,
    dir: std::os::fd::OwnedFd,
    limits: &Limits,
    opts: CopyOptions,
) -> Result<UnpackStats> {
    let (metered, meter) = Metered::new(reader, HEADER_BUDGET);
    let mut archive = tar::Archive::new(metered);
    let mut x = Extractor::new(dir);
    x.whiteouts = false;
    x.keep_kinds = opts.no_overwrite_dir_non_dir;
    let stats = extract_all(&mut archive, x, &meter, limits)?;
    Ok(stats)
}

/// Every entry of `archive` through `x`, each admitted against `limits` first; then `x`'s
/// deferred work (its `finish`).
fn extract_all<R: Read>(
    archive: &mut tar::Archive<R>,
    mut x: Extractor,
    meter: &MeterHandle,
    limits: &Limits,
) -> Result<UnpackStats> {
    let mut stats = UnpackStats::default();
    let mut last: Option<String> = None;
    for entry in archive
        .entries()
        .map_err(|e| tar_error(e, meter, last.as_deref()))?
    {
        let mut entry = entry.map_err(|e| tar_error(e, meter, last.as_deref()))?;
        let size = entry.size();
        last = Some(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        stats.admit(size, limits)?;
        meter.allow(size);
        x.extract(&mut entry)?;
    }
    x.finish()?;
    Ok(stats)
}

fn tar_error(e: io::Error, meter: &MeterHandle, last: Option<&str>) -> Error {
    let at = match last {
        Some(l) => format!("after entry {l:?}"),
        None => "at the first entry".into(),
    };
    if meter.tripped() {
        return Error::invalid(
            "layer tar",
            format!(
                "headers (long names, PAX records) of the entry {at} exceed {} MiB",
                meter.budget() >> 20
            ),
        );
    }
    Error::invalid("layer tar", format!("{at}: {e}"))
}
