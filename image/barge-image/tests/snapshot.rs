//! The snapshotter's mounts, mounted for real: long layer lists beyond a page of options, the
//! upper dir, and garbage collection that never takes a container's layers.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;

use barge_image::mount::{mount_all, unmount_all};
use barge_image::snapshot::chain_ids;
use barge_image::store::Store;
use barge_image::Digest;

/// Commit `n` layers, each adding `layer-i` and overwriting `common`; returns the chain IDs.
fn layers(store: &Store, n: usize) -> Vec<Digest> {
    let diff_ids: Vec<Digest> = (0..n)
        .map(|i| Digest::of(format!("layer {i}").as_bytes()))
        .collect();
    let chain = chain_ids(&diff_ids);
    for i in 0..n {
        let ex = store.snapshots.begin_extract().unwrap();
        fs::write(ex.dir().join(format!("layer-{i}")), i.to_string()).unwrap();
        fs::write(ex.dir().join("common"), i.to_string()).unwrap();
        store
            .snapshots
            .commit_extract(ex, &chain[i], i.checked_sub(1).map(|p| &chain[p]), 1)
            .unwrap();
    }
    chain
}

#[test]
fn long_lowerdir_lists_mount() {
    let tmp = tempfile::tempdir().unwrap();
    // A long store path makes every lowerdir entry long, as on devices with deep data paths.
    let root = tmp
        .path()
        .join("a".repeat(120))
        .join("b".repeat(120))
        .join("root");
    let store = Store::open(&root).unwrap();
    let chain = layers(&store, 40);
    let mounts = store
        .snapshots
        .prepare("ctr", Some(chain[39].as_str()))
        .unwrap();
    let lower = mounts[0]
        .options
        .iter()
        .find(|o| o.starts_with("lowerdir="))
        .unwrap();
    assert!(
        lower.len() > 4096,
        "the test needs options longer than a page: {}",
        lower.len()
    );
    let target = tmp.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    mount_all(&mounts, &target).unwrap();
    let result = std::panic::catch_unwind(|| {
        for i in 0..40 {
            assert_eq!(
                fs::read_to_string(target.join(format!("layer-{i}"))).unwrap(),
                i.to_string()
            );
        }
        assert_eq!(
            fs::read_to_string(target.join("common")).unwrap(),
            "39",
            "the top layer wins"
        );
        fs::write(target.join("new"), "upper").unwrap();
    });
    unmount_all(&target).unwrap();
    result.unwrap();
    // Writes went to the container's own upper dir, not to a layer.
    let rec = store.snapshots.get("ctr").unwrap();
    assert_eq!(
        fs::read_to_string(store.snapshots.fs_dir(rec.id).join("new")).unwrap(),
        "upper"
    );
    store.snapshots.remove("ctr").unwrap();
}

#[test]
fn gc_keeps_what_containers_use() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let chain = layers(&store, 3);
    store
        .snapshots
        .prepare("ctr", Some(chain[1].as_str()))
        .unwrap();
    // No image names these layers: only the container's parents (0 and 1) survive.
    let report = barge_image::gc::collect(&store, true).unwrap().unwrap();
    assert_eq!(report.snapshots, 1);
    assert!(store.snapshots.committed(chain[0].as_str()).unwrap());
    assert!(store.snapshots.committed(chain[1].as_str()).unwrap());
    assert!(!store.snapshots.committed(chain[2].as_str()).unwrap());
    // A layer others build on can't be removed directly.
    let err = store
        .snapshots
        .remove(chain[0].as_str())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use"), "{err}");
    store.snapshots.remove("ctr").unwrap();
    barge_image::gc::collect(&store, true).unwrap();
    assert!(store.snapshots.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(store.snapshots.dir()).unwrap().count(), 0);
}

#[test]
fn abandoned_extractions_are_collected() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let ex = store.snapshots.begin_extract().unwrap();
    fs::write(ex.dir().join("half"), "x").unwrap();
    // Held by a live writer: kept.
    barge_image::gc::collect(&store, true).unwrap();
    assert!(ex.dir().join("half").exists());
    // A writer that died (killed mid-pull: record and directory left, flock gone) is
    // collected; ours, still alive, stays.
    let root = tmp.path().to_path_buf();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_extraction_then_exit",
            "--nocapture",
            "--ignored",
        ])
        .env("BARGE_TEST_ROOT", &root)
        .status()
        .unwrap();
    assert!(status.success());
    let before = store.snapshots.list().unwrap().len();
    barge_image::gc::collect(&store, true).unwrap();
    let after = store.snapshots.list().unwrap().len();
    assert_eq!(
        before - after,
        1,
        "the dead child's extraction is gone, ours stays"
    );
    assert!(ex.dir().join("half").exists());
    assert_eq!(fs::read_dir(store.snapshots.dir()).unwrap().count(), 1);
}

/// Run by `abandoned_extractions_are_collected` in a child process: starts an extraction and
/// exits without finishing it, as a killed pull would.
#[test]
#[ignore]
fn child_extraction_then_exit() {
    let Some(root) = std::env::var_os("BARGE_TEST_ROOT") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&root)).unwrap();
    let ex = store.snapshots.begin_extract().unwrap();
    fs::write(ex.dir().join("half"), "x").unwrap();
    std::process::exit(0);
}
