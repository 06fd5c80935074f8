//! Where the engine keeps things: persistent state under the root (default /var/lib/barge),
//! volatile state (sockets, the runtime's state) under the run root (default /run/barge,
//! a tmpfs that a reboot wipes).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub runroot: PathBuf,
}

impl Paths {
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container(id).join("rootfs")
    }
    pub fn shim_state(&self, id: &str) -> PathBuf {
        self.container(id).join("state.json")
    }
    /// Present while the container may be paused (written before the freeze, removed after
    /// the thaw): `status` asks the runtime only for containers that have it.
    pub fn pause_marker(&self, id: &str) -> PathBuf {
        self.container(id).join("paused")
    }
    pub fn stop_marker(&self, id: &str) -> PathBuf {
        self.container(id).join("stopped")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.container(id).join("container.log")
    }
    pub fn lock(&self, id: &str) -> PathBuf {
        self.container(id).join("lock")
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes().join(name).join("_data")
    }
    /// The container's network namespace, pinned (see `barge_runtime::netns`).
    pub fn netns(&self, id: &str) -> PathBuf {
        self.runroot.join("netns").join(id)
    }
    /// The container's network attachments while its network is up (one file per network:
    /// what was sent to the CNI plugins and what they answered, for DEL and inspect).
    pub fn attachments(&self, id: &str) -> PathBuf {
        self.container(id).join("net")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.runroot.join("runtime")
    }
    /// The shim's socket; kept short (unix socket paths are limited to 107 bytes).
    pub fn socket(&self, id: &str) -> PathBuf {
        self.runroot.join("s").join(id)
    }
    pub fn is_default_root(root: &Path) -> bool {
        root == Path::new("/var/lib/barge")
    }
}
