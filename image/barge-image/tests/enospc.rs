//! A pull that runs out of space: the store root is a small tmpfs mounted by the test. The
//! failed pull must leave nothing behind but the resumable partial download of the layer in
//! flight, and a pull after space was freed must work (resuming that partial).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use barge_image::config::Config;
use barge_image::progress::{Event, LayerState};
use barge_image::pull::PullOptions;
use barge_image::store::Store;
use barge_testutil::oci_image::{push_image, Comp, Entry, Image, Layer};
use barge_testutil::registry::Registry;
use common::{Collect, Env};

const LAYER: usize = 10 << 20;

/// A tmpfs mounted on a fresh directory, unmounted (lazily) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run(
            &[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            dir,
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        run(&["mount", "-o", &format!("remount,size={size}")], &self.dir);
    }

    /// Bytes in use on the filesystem.
    fn used(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.dir).unwrap();
        (s.blocks() - s.blocks_free()) * s.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn run(args: &[&str], target: &Path) {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]).arg(target);
    let out = barge_testutil::exec_bounded(c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        barge_testutil::stderr(&out)
    );
}

/// Every file under `dir` with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push((e.path(), m.len()));
        }
    }
    out
}

#[test]
fn enospc_leaves_only_the_partial_in_flight_and_a_later_pull_resumes() {
    let reg = Registry::start();
    // Three incompressible 10 MB layers: 30 MB of blobs and 30 MB unpacked, on 24 MB.
    let layers = (0..3)
        .map(|i| {
            Layer::new(
                Comp::None,
                vec![Entry::file(
                    &format!("big{i}"),
                    barge_testutil::noise(LAYER, 11 + i as u64),
                    0o644,
                )],
            )
        })
        .collect();
    let built = push_image(&reg, "big", "1", &Image::new(layers));

    // Dropped in reverse: the store, then the mount, then its directory.
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let fs = Tmpfs::mount(&root, "24m");
    let empty = fs.used();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let e = Env {
        store: Arc::new(Store::open(&root).unwrap()),
        config: Config::load(&dir.path().join("etc")).unwrap(),
        dir,
    };
    let name = format!("{}/big:1", reg.addr);

    let err = e.pull(&name).unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    // It names the layer's blob (the partial file, or the layer being unpacked).
    assert!(
        built
            .layer_digests
            .iter()
            .any(|d| err.contains(d.trim_start_matches("sha256:"))),
        "names the layer: {err}"
    );

    // No image, no snapshot, no blob; at most one partial download, at most one layer big.
    assert_eq!(e.store.db.images().unwrap(), vec![]);
    assert_eq!(e.store.db.snapshots().unwrap(), vec![], "snapshots left");
    assert_eq!(e.store.content.list().unwrap(), vec![], "blobs left");
    assert_eq!(files(e.store.snapshots.dir()), vec![]);
    let partials = files(&root.join("content/ingest"));
    assert!(
        partials.len() <= 1,
        "partials of other layers left: {partials:?}"
    );
    let used = fs.used() - empty;
    let db: u64 = files(&root)
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("barge.db"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        used <= LAYER as u64 + db + (1 << 20),
        "{used} bytes used after the failed pull (partials {partials:?}, db {db})"
    );

    // With room, the same pull works, continuing from the partial it kept.
    fs.resize("200m");
    let progress = Arc::new(Collect::default());
    e.pull_with(&name, PullOptions::default(), progress.clone())
        .unwrap();
    let resumed = progress.events().into_iter().any(|ev| {
        matches!(
            ev,
            Event::Layer {
                state: LayerState::Resuming { .. },
                ..
            }
        )
    });
    assert_eq!(resumed, !partials.is_empty(), "{partials:?}");
    e.with_rootfs(&name, |r| {
        assert_eq!(
            std::fs::metadata(r.join("big2")).unwrap().len(),
            LAYER as u64
        );
    });
    assert_eq!(files(&root.join("content/ingest")), vec![]);
}

#[test]
fn prune_reclaims_partial_downloads_nobody_writes() {
    let e = common::env();
    let stale = barge_image::Digest::of(b"stale");
    let held = barge_image::Digest::of(b"held");
    let mut w = e.store.content.ingest(&stale, Some(5)).unwrap();
    w.write_all(b"sta").unwrap();
    drop(w);
    let mut busy = e.store.content.ingest(&held, Some(4)).unwrap();
    busy.write_all(b"he").unwrap();
    let ingest = e.store.root().join("content/ingest");
    // Automatic collection keeps young partials (a later pull resumes them)...
    barge_image::gc::collect(&e.store, true).unwrap();
    assert_eq!(files(&ingest).len(), 2);
    // ...prune takes every one nobody is writing.
    let report = barge_image::gc::prune(&e.store).unwrap();
    assert_eq!(report.ingests, 1);
    assert_eq!(files(&ingest), vec![(busy.path().to_path_buf(), 2)]);
    busy.write_all(b"ld").unwrap();
    busy.commit().unwrap();
    assert!(e.store.content.exists(&held));
}
