//! The container's filesystem: rootfs bind, spec mounts, /dev, pivot_root, masked and
//! read-only paths, sysctls.

pub mod devices;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod pivot;
pub mod resolve;

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

use crate::cgroups::Placement;
use crate::error::{at, Context, Error, Result};
use resolve::{Kind, Root};

/// Flags for `linux.rootfsPropagation`.
pub fn propagation_flag(name: &str) -> Result<MsFlags> {
    options::propagation(name)
        .ok_or_else(|| Error::Config(format!("linux.rootfsPropagation: unknown value {name:?}")))
}

/// Inputs of the rootfs setup.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub placement: &'a Placement,
    pub cgroupns: bool,
    pub userns: bool,
    /// Idmapped clones of mount sources, from [`idmap::prepare_all`] in the runtime.
    pub idmapped: &'a [Option<std::os::fd::OwnedFd>],
}

/// Everything before pivot_root: propagation, the rootfs bind, mounts and devices.
pub fn prepare(s: &Setup) -> Result<()> {
    let linux = s.spec.linux().as_ref();
    let prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(p) => propagation_flag(p)?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        prop | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "set propagation of /".into())?;
    if prop.contains(MsFlags::MS_SHARED) {
        make_parent_private(s.rootfs)?;
    }
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| at("bind mount rootfs", s.rootfs))?;
    let root = Root::open(s.rootfs)?;
    let ctx = mounts::MountCtx {
        root: &root,
        spec: s.spec,
        idmapped: s.idmapped,
        bundle: s.bundle,
        placement: s.placement,
        cgroupns: s.cgroupns,
        userns: s.userns,
    };
    let spec_mounts = s.spec.mounts().as_deref().unwrap_or_default();
    for (i, m) in spec_mounts.iter().enumerate() {
        mounts::mount_entry(&ctx, i, m)?;
    }
    let dev_is_bound = spec_mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    let mut devs = if dev_is_bound {
        Vec::new()
    } else {
        devices::defaults()
    };
    for d in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
    {
        let d = devices::from_spec(d)?;
        devs.retain(|x| x.path != d.path);
        devs.push(d);
    }
    for d in &devs {
        devices::create(&root, d, s.userns)?;
    }
    if !dev_is_bound {
        devices::symlinks(&root)?;
    }
    Ok(())
}

/// pivot_root (or MS_MOVE + chroot with `--no-pivot`).
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        pivot::move_root(rootfs)
    } else {
        pivot::pivot(rootfs)
    }
}

/// After pivot_root: sysctls, read-only and masked paths, read-only root, root propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(sysctl) = linux.sysctl() {
        for (k, v) in sysctl {
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&path, v).ctx(|| format!("set sysctl {k}={v}"))?;
        }
    }
    let root = Root::open(Path::new("/"))?;
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        readonly_path(&root, Path::new(p))?;
    }
    for p in linux.masked_paths().as_deref().unwrap_or_default() {
        mask_path(&root, Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let top = root_fd()?;
        mounts::remount(&top, MsFlags::MS_BIND | MsFlags::MS_RDONLY)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            propagation_flag(p)?,
            None::<&str>,
        )
        .ctx(|| format!("set propagation {p} on /"))?;
    }
    Ok(())
}

fn root_fd() -> Result<std::os::fd::OwnedFd> {
    nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open /".into())
}

fn readonly_path(root: &Root, p: &Path) -> Result<()> {
    let Some(fd) = root.lookup(p)? else {
        return Ok(());
    };
    mounts::do_mount(
        Some(&resolve::fd_path(&fd)),
        &fd,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        "",
    )?;
    let top = root
        .lookup(p)?
        .ok_or_else(|| Error::Container(format!("readonly path {} vanished", p.display())))?;
    mounts::remount(
        &top,
        MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_REC,
    )
}

fn mask_path(root: &Root, p: &Path) -> Result<()> {
    let Some(fd) = root.lookup(p)? else {
        return Ok(());
    };
    let is_dir = std::fs::metadata(resolve::fd_path(&fd))
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let r = if is_dir {
        mounts::do_mount(
            Some(Path::new("tmpfs")),
            &fd,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            "",
        )
    } else {
        mounts::do_mount(
            Some(Path::new("/dev/null")),
            &fd,
            None,
            MsFlags::MS_BIND,
            "",
        )
    };
    r
}

/// pivot_root refuses a new root whose parent mount is shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mounts = barge_util::mountinfo::read_self().ctx(|| "list mounts".into())?;
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let mp = mounts
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| parent.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"));
    mount(
        None::<&str>,
        &mp,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| at("make private", &mp))
}

/// Create an empty file at `dest` in the (already pivoted) root; used for /dev/console.
pub fn ensure_file(dest: &Path) -> Result<std::os::fd::OwnedFd> {
    Root::open(Path::new("/"))?.create(dest, Kind::File)
}
