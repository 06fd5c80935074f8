//! Layers: the diff of an overlay snapshot (its upper directory) as an OCI layer tar with
//! whiteouts, gzip-compressed into the content store with its digest and diffID, and unpacked
//! as the committed snapshot of its chain ID. Entries are sorted, owners numeric, and with
//! `SOURCE_DATE_EPOCH` the mtimes are clamped to it: the same tree gives the same bytes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use barge_image::apply::{apply_layer, LayerTarget};
use barge_image::content::Ingest;
use barge_image::digest::{Digest, Hasher};
use barge_image::snapshot::chain_ids;
use barge_image::store::Store;
use barge_image::unpack::{Compression, Limits};
use serde::{Deserialize, Serialize};

use super::error::{BuildError, Result};

/// A layer of an image being built: its blob and what it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Which upper-dir entries are not part of the diff.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Everything (COPY, WORKDIR).
    None,
    /// A RUN container's: the mount points the runtime made (`/etc/hosts`, `/etc/resolv.conf`,
    /// `/etc/hostname`, empty `/proc`, `/sys`, `/dev`) are left out.
    RunMounts,
}

/// A writable overlay snapshot on a stage's layers, mounted on a private directory: COPY, ADD
/// and WORKDIR write into [`Workspace::root`]; [`Workspace::finish`] turns the changes into a
/// layer. Dropped unfinished, it is unmounted and removed.
pub struct Workspace<'a> {
    store: &'a Store,
    key: String,
    mnt: PathBuf,
    mounted: bool,
}

impl<'a> Workspace<'a> {
    /// A workspace on `parent` (a committed chain ID; None: empty), mounted under `run_dir`.
    pub fn open(
        store: &'a Store,
        run_dir: &Path,
        parent: Option<&Digest>,
    ) -> Result<Workspace<'a>> {
        let key = format!(
            "build-{}-{}",
            std::process::id(),
            barge_image::meta::now_nanos()
        );
        let mnt = run_dir.join(&key);
        let mounts = store.snapshots.prepare(&key, parent.map(|p| p.as_str()))?;
        let mut ws = Workspace {
            store,
            key,
            mnt,
            mounted: false,
        };
        fs::create_dir_all(&ws.mnt)
            .map_err(|e| BuildError::other(format!("create {}: {e}", ws.mnt.display())))?;
        barge_image::mount::mount_all(&mounts, &ws.mnt)?;
        ws.mounted = true;
        Ok(ws)
    }

    /// The mounted root filesystem.
    pub fn root(&self) -> &Path {
        &self.mnt
    }

    /// Unmount, and make the changes a layer on `parent` (None when nothing changed).
    pub fn finish(mut self, parent: &[Digest], epoch: Option<i64>) -> Result<Option<LayerRef>> {
        self.unmount();
        let rec = self.store.snapshots.get(&self.key)?;
        let upper = self.store.snapshots.fs_dir(rec.id);
        commit_dir(self.store, &upper, parent, epoch, Filter::None)
    }

    fn unmount(&mut self) {
        if self.mounted {
            let _ = barge_image::mount::unmount_all(&self.mnt);
            self.mounted = false;
        }
    }
}

impl Drop for Workspace<'_> {
    fn drop(&mut self) {
        self.unmount();
        let _ = fs::remove_dir(&self.mnt);
        let _ = self.store.snapshots.remove(&self.key);
    }
}

/// Make the upper directory `upper` a layer on the layers `parent` (diffIDs): stored in the
/// content store and unpacked as a committed snapshot. None when `upper` holds no change.
pub fn commit_dir(
    store: &Store,
    upper: &Path,
    parent: &[Digest],
    epoch: Option<i64>,
    filter: Filter,
) -> Result<Option<LayerRef>> {
    let entries = walk(upper, filter)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut ingest = store.content.ingest_unknown()?;
    let diff_id = match write_layer(upper, &entries, epoch, &mut ingest) {
        Ok(d) => d,
        Err(e) => {
            ingest.abort();
            return Err(e);
        }
    };
    let digest = ingest.commit()?;
    let layer = LayerRef {
        size: store.content.size(&digest)?,
        digest,
        diff_id,
        media_type: barge_image::manifest::OCI_LAYER_GZIP.to_string(),
    };
    ensure_snapshot(store, parent, &layer)?;
    Ok(Some(layer))
}

/// Make sure the layer `layer` on `parent` is unpacked as a committed snapshot.
pub fn ensure_snapshot(store: &Store, parent: &[Digest], layer: &LayerRef) -> Result<()> {
    let mut ids = parent.to_vec();
    ids.push(layer.diff_id.clone());
    let chain = chain_ids(&ids);
    let (Some(top), below) = (chain.last(), chain.len().checked_sub(2).map(|i| &chain[i])) else {
        return Ok(());
    };
    if store.snapshots.committed(top.as_str())? {
        return Ok(());
    }
    let what = format!("built layer {}", layer.digest);
    let target = LayerTarget {
        what: &what,
        diff_id: &layer.diff_id,
        chain: top,
        parent: below,
    };
    let limits = Limits {
        max_entries: u64::MAX,
        max_bytes: u64::MAX,
    };
    apply_layer(
        store,
        &limits,
        &target,
        Compression::Gzip,
        store.content.open_blob(&layer.digest)?,
    )?;
    Ok(())
}

/// One entry of the diff: its path below the upper dir and what to write for it.
struct Entry {
    rel: PathBuf,
    meta: fs::Metadata,
    /// An overlay whiteout (a 0/0 character device): `.wh.NAME` in the tar.
    whiteout: bool,
    /// An overlay opaque directory: followed by `.wh..wh..opq`.
    opaque: bool,
}

/// The entries of `upper`, sorted (a directory before what is in it).
fn walk(upper: &Path, filter: Filter) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_dir(upper, Path::new(""), filter, &mut out)?;
    Ok(out)
}

fn walk_dir(base: &Path, rel: &Path, filter: Filter, out: &mut Vec<Entry>) -> Result<()> {
    let dir = base.join(rel);
    let rd = fs::read_dir(&dir).map_err(|e| io_err("read directory", &dir, e))?;
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for e in rd {
        names.push(
            e.map_err(|e| io_err("read directory", &dir, e))?
                .file_name(),
        );
    }
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = base.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| io_err("stat", &path, e))?;
        if filter == Filter::RunMounts && is_run_mount(&rel, &path, &meta) {
            continue;
        }
        let ft = meta.file_type();
        let whiteout = ft.is_char_device() && meta.rdev() == 0;
        let opaque = ft.is_dir()
            && xattr::get(&path, "trusted.overlay.opaque")
                .ok()
                .flatten()
                .is_some_and(|v| v == b"y");
        let is_dir = ft.is_dir();
        out.push(Entry {
            rel: rel.clone(),
            meta,
            whiteout,
            opaque,
        });
        if is_dir {
            let at = out.len();
            walk_dir(base, &rel, filter, out)?;
            // /etc holding only the runtime's mount points is not a change.
            if filter == Filter::RunMounts && out.len() == at && rel == Path::new("etc") {
                out.pop();
            }
        }
    }
    Ok(())
}

fn is_run_mount(rel: &Path, path: &Path, meta: &fs::Metadata) -> bool {
    let s = rel.to_string_lossy();
    match s.as_ref() {
        "etc/hosts" | "etc/resolv.conf" | "etc/hostname" => meta.is_file() && meta.len() == 0,
        "proc" | "sys" | "dev" => {
            meta.is_dir()
                && fs::read_dir(path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
        }
        _ => false,
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> BuildError {
    BuildError::other(format!("{what} {}: {e}", path.display()))
}

/// Writes into a blob being ingested, keeping the store's own error.
struct IngestWriter<'a> {
    ingest: &'a mut Ingest,
    error: Option<barge_image::Error>,
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

/// Hashes what goes through (the uncompressed tar: the diffID).
struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write the tar of `entries` gzip-compressed into `ingest`; the diffID.
fn write_layer(
    upper: &Path,
    entries: &[Entry],
    epoch: Option<i64>,
    ingest: &mut Ingest,
) -> Result<Digest> {
    let gz = flate2::GzBuilder::new().mtime(0).write(
        IngestWriter {
            ingest,
            error: None,
        },
        flate2::Compression::fast(),
    );
    let hashed = HashWriter {
        inner: gz,
        hasher: Hasher::new(),
    };
    let mut b = tar::Builder::new(hashed);
    let written = append_all(&mut b, upper, entries, epoch);
    let finished = written.and_then(|()| {
        b.into_inner()
            .map_err(|e| BuildError::other(format!("write layer tar: {e}")))
    });
    let hashed = finished?;
    let HashWriter { inner: gz, hasher } = hashed;
    let mut w = gz
        .finish()
        .map_err(|e| BuildError::other(format!("compress layer: {e}")))?;
    if let Some(e) = w.error.take() {
        return Err(e.into());
    }
    Ok(hasher.finish())
}

fn append_all<W: Write>(
    b: &mut tar::Builder<W>,
    upper: &Path,
    entries: &[Entry],
    epoch: Option<i64>,
) -> Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let werr = |p: &Path, e: io::Error| {
        BuildError::other(format!("add {} to the layer: {e}", p.display()))
    };
    for e in entries {
        let m = &e.meta;
        let mtime = match epoch {
            Some(ep) => m.mtime().min(ep).max(0) as u64,
            None => m.mtime().max(0) as u64,
        };
        if e.whiteout {
            let name = e.rel.file_name().unwrap_or_default().to_string_lossy();
            let rel = e.rel.with_file_name(format!(".wh.{name}"));
            let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
            h.set_size(0);
            b.append_data(&mut h, &rel, io::empty())
                .map_err(|x| werr(&rel, x))?;
            continue;
        }
        let ft = m.file_type();
        let mode = m.mode() & 0o7777;
        let mut h;
        if ft.is_dir() {
            h = header(tar::EntryType::Directory, mode, m.uid(), m.gid(), mtime);
            h.set_size(0);
            b.append_data(&mut h, &e.rel, io::empty())
                .map_err(|x| werr(&e.rel, x))?;
            if e.opaque {
                let rel = e.rel.join(".wh..wh..opq");
                let mut o = header(tar::EntryType::Regular, 0o644, 0, 0, mtime);
                o.set_size(0);
                b.append_data(&mut o, &rel, io::empty())
                    .map_err(|x| werr(&rel, x))?;
            }
        } else if ft.is_symlink() {
            let path = upper.join(&e.rel);
            let target = fs::read_link(&path).map_err(|x| io_err("readlink", &path, x))?;
            h = header(tar::EntryType::Symlink, mode, m.uid(), m.gid(), mtime);
            h.set_size(0);
            b.append_link(&mut h, &e.rel, &target)
                .map_err(|x| werr(&e.rel, x))?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    h = header(tar::EntryType::Link, mode, m.uid(), m.gid(), mtime);
                    h.set_size(0);
                    b.append_link(&mut h, &e.rel, first)
                        .map_err(|x| werr(&e.rel, x))?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), e.rel.clone());
            }
            let path = upper.join(&e.rel);
            let f = fs::File::open(&path).map_err(|x| io_err("open", &path, x))?;
            h = header(tar::EntryType::Regular, mode, m.uid(), m.gid(), mtime);
            h.set_size(m.len());
            b.append_data(&mut h, &e.rel, f)
                .map_err(|x| werr(&e.rel, x))?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                // Sockets are not archived (as docker).
                continue;
            };
            h = header(kind, mode, m.uid(), m.gid(), mtime);
            h.set_size(0);
            let rdev = m.rdev();
            let _ = h.set_device_major(nix::sys::stat::major(rdev) as u32);
            let _ = h.set_device_minor(nix::sys::stat::minor(rdev) as u32);
            b.append_data(&mut h, &e.rel, io::empty())
                .map_err(|x| werr(&e.rel, x))?;
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid as u64);
    h.set_gid(gid as u64);
    h.set_mtime(mtime);
    h
}
