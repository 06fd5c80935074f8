//! Shared helpers for the image integration tests: a fresh store and config per test, a
//! synchronous pull, and the merged rootfs of an image mounted for inspection.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use barge_image::config::Config;
use barge_image::meta::ImageRecord;
use barge_image::progress::{Event, Progress};
use barge_image::pull::PullOptions;
use barge_image::reference::ImageRef;
use barge_image::store::Store;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub config: Config,
}

pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("root")).unwrap());
    let config = Config::load(&dir.path().join("etc")).unwrap();
    Env { dir, store, config }
}

impl Env {
    pub fn config_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("etc")
    }

    pub fn reload_config(&mut self) {
        self.config = Config::load(&self.config_dir()).unwrap();
    }

    pub fn pull(&self, reference: &str) -> barge_image::Result<ImageRecord> {
        self.pull_with(
            reference,
            PullOptions::default(),
            Arc::new(Collect::default()),
        )
    }

    pub fn pull_with(
        &self,
        reference: &str,
        opts: PullOptions,
        progress: Arc<Collect>,
    ) -> barge_image::Result<ImageRecord> {
        let r = ImageRef::parse(reference)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(barge_image::pull::pull(
            self.store.clone(),
            &self.config,
            &r,
            &opts,
            progress,
        ))
    }

    /// Mount the image's rootfs (its layers plus a fresh upper dir) and run `f` on it.
    pub fn with_rootfs<T>(&self, name: &str, f: impl FnOnce(&Path) -> T) -> T {
        let rec = self.store.resolve(name).unwrap();
        let img = self.store.image(&rec).unwrap();
        let key = format!("test-{}", std::process::id());
        let mounts = self
            .store
            .snapshots
            .prepare(&key, img.top().map(|d| d.as_str()))
            .unwrap();
        let target = self.dir.path().join("rootfs");
        std::fs::create_dir_all(&target).unwrap();
        barge_image::mount::mount_all(&mounts, &target).unwrap();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&target)));
        barge_image::mount::unmount_all(&target).unwrap();
        self.store.snapshots.remove(&key).unwrap();
        match out {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Nothing half-made: no image, no snapshot, no blob, no snapshot directory.
    pub fn assert_empty(&self) {
        assert_eq!(self.store.db.images().unwrap(), vec![], "images");
        assert_eq!(self.store.db.snapshots().unwrap(), vec![], "snapshots");
        assert_eq!(self.store.content.list().unwrap(), vec![], "blobs");
        let dirs: Vec<_> = std::fs::read_dir(self.store.snapshots.dir())
            .unwrap()
            .collect();
        assert!(dirs.is_empty(), "snapshot dirs left: {dirs:?}");
    }
}

/// Records every progress event.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl Progress for Collect {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}
