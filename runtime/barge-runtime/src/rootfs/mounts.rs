//! Performing the spec's mounts inside the rootfs (before pivot_root).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{Mount, Spec};

use super::idmap;
use super::options::{self, MountOptions};
use super::resolve::{fd_path, Kind, Root};
use crate::cgroups::{self, Mode, Placement};
use crate::error::{Context, Error, Result};

/// What mounting needs to know beyond the mount itself.
pub struct MountCtx<'a> {
    pub root: &'a Root,
    /// The whole spec (idmapped mounts may take the container's `linux.uidMappings`).
    pub spec: &'a Spec,
    /// Idmapped clones of the mounts' sources, made by the runtime (indexed like spec.mounts).
    pub idmapped: &'a [Option<OwnedFd>],
    pub bundle: &'a Path,
    pub placement: &'a Placement,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The container runs in a new user namespace (mknod and some fs types are not allowed).
    pub userns: bool,
}

/// Mount one `mounts[]` entry.
pub fn mount_entry(ctx: &MountCtx, index: usize, m: &Mount) -> Result<()> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    // Also refuses mappings (or idmap/ridmap) on anything but a bind mount.
    let idmapped = idmap::request(m, &opts, ctx.spec)?;
    if opts.bind || typ == "bind" {
        let tree = idmapped.map(|_| ctx.idmapped.get(index).and_then(Option::as_ref));
        return bind(ctx, m, &opts, tree);
    }
    match typ {
        "cgroup" | "cgroup2" => cgroup(ctx, dest, &opts),
        "" => Err(Error::Config(format!(
            "mount {}: type is missing",
            dest.display()
        ))),
        _ => {
            let target = ctx.root.create(dest, Kind::Dir)?;
            let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
            let r = do_mount(Some(&source), &target, Some(typ), opts.flags, &opts.data);
            match r {
                Err(Error::Sys {
                    source: Errno::EPERM,
                    ..
                }) if typ == "sysfs" && ctx.userns => {
                    // A user namespace without its own network namespace may not mount sysfs:
                    // bind the host's read-only instead (as runc does for rootless containers).
                    rbind_remount(
                        ctx,
                        Path::new("/sys"),
                        dest,
                        opts.flags | MsFlags::MS_RDONLY | MsFlags::MS_BIND,
                    )
                }
                r => {
                    r?;
                    propagate(ctx, dest, &opts)
                }
            }
        }
    }
}

fn bind(
    ctx: &MountCtx,
    m: &Mount,
    opts: &MountOptions,
    idmapped: Option<Option<&OwnedFd>>,
) -> Result<()> {
    let dest = m.destination();
    let src = bind_source(m, ctx.bundle)?;
    let meta = std::fs::metadata(&src).map_err(|e| {
        Error::Config(format!(
            "bind mount {}: source {}: {e}",
            dest.display(),
            src.display()
        ))
    })?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = ctx.root.create(dest, kind)?;
    let base = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    match idmapped {
        Some(Some(tree)) => idmap::attach(tree, &target, dest, &src)?,
        Some(None) => {
            return Err(Error::Container(format!(
                "mount {}: the runtime prepared no idmapped mount for it",
                dest.display()
            )))
        }
        None => do_mount(Some(&src), &target, None, base, "")?,
    }
    let extra = opts.flags - MsFlags::MS_BIND - MsFlags::MS_REC - MsFlags::MS_REMOUNT;
    if !extra.is_empty() {
        let top = reopen(ctx, dest)?;
        remount(&top, extra | MsFlags::MS_BIND)?;
    }
    propagate(ctx, dest, opts)
}

/// A bind mount's source: absolute, or relative to the bundle directory.
pub(super) fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    let src = m.source().as_ref().ok_or_else(|| {
        Error::Config(format!(
            "bind mount {}: source is missing",
            m.destination().display()
        ))
    })?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

/// The fd of whatever is mounted at `dest` now (the lookup sees the top mount).
fn reopen(ctx: &MountCtx, dest: &Path) -> Result<OwnedFd> {
    ctx.root
        .lookup(dest)?
        .ok_or_else(|| Error::Container(format!("{} vanished while mounting", dest.display())))
}

fn propagate(ctx: &MountCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top = reopen(ctx, dest)?;
    for p in &opts.propagation {
        do_mount(None, &top, None, *p, "")?;
    }
    Ok(())
}

/// Remount a bind mount with `flags`, keeping the flags the kernel locks (nosuid, nodev, ...).
pub fn remount(target: &OwnedFd, flags: MsFlags) -> Result<()> {
    let path = fd_path(target);
    let locked = locked_flags(&path);
    do_mount(None, target, None, flags | locked | MsFlags::MS_REMOUNT, "")
}

/// Flags of the mount at `path` that an unprivileged remount may not clear.
pub fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

/// mount(2) onto an O_PATH fd, with an error naming source and target.
pub fn do_mount(
    source: Option<&Path>,
    target: &OwnedFd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    let tpath = fd_path(target);
    let shown = std::fs::read_link(&tpath).unwrap_or_else(|_| tpath.clone());
    let data = (!data.is_empty()).then_some(data);
    mount(source, &tpath, fstype, flags, data).ctx(|| {
        format!(
            "mount {} on {} (type {}, flags {:?}{})",
            source.map_or("none".into(), |s| s.display().to_string()),
            shown.display(),
            fstype.unwrap_or("none"),
            flags,
            data.map_or(String::new(), |d| format!(", data {d}"))
        )
    })
}

/// `type: cgroup`: the container's own view of the cgroup hierarchies.
fn cgroup(ctx: &MountCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    let target = ctx.root.create(dest, Kind::Dir)?;
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if ctx.placement.mode == Mode::V2 {
        let r = do_mount(
            Some(Path::new("cgroup2")),
            &target,
            Some("cgroup2"),
            flags,
            "",
        );
        return match r {
            Ok(()) => Ok(()),
            Err(_) if !ctx.cgroupns => bind_own(ctx, dest, ctx.placement.paths.first(), flags),
            Err(e) => Err(e),
        };
    }
    // v1 and hybrid: a tmpfs holding one directory per hierarchy.
    do_mount(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "mode=755",
    )?;
    let (_, hierarchies) = cgroups::detect()?;
    let root = reopen(ctx, dest)?;
    for (i, h) in hierarchies.iter().enumerate() {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub_dest = dest.join(name);
        let sub = ctx.root.create(&sub_dest, Kind::Dir)?;
        let mounted = if ctx.cgroupns {
            let (fstype, data) = if h.is_unified() {
                ("cgroup2", String::new())
            } else {
                ("cgroup", h.controllers.join(","))
            };
            do_mount(Some(Path::new("cgroup")), &sub, Some(fstype), flags, &data).is_ok()
        } else {
            false
        };
        if !mounted {
            bind_own(ctx, &sub_dest, ctx.placement.paths.get(i), flags)?;
        }
        // `cpu` -> `cpu,cpuacct` and friends, as on the host.
        let name = name.to_string_lossy();
        if name.contains(',') {
            for c in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_ref(), &root, c);
            }
        }
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount(&root, MsFlags::MS_RDONLY | MsFlags::MS_BIND)?;
    }
    Ok(())
}

/// Bind the container's own cgroup directory (no cgroup namespace, or mounting was refused).
fn bind_own(ctx: &MountCtx, dest: &Path, own: Option<&PathBuf>, flags: MsFlags) -> Result<()> {
    let Some(own) = own else {
        return Ok(());
    };
    rbind_remount(
        ctx,
        own,
        dest,
        (flags & MsFlags::MS_RDONLY) | MsFlags::MS_BIND,
    )
}

/// Recursively bind the host's `src` on `dest`, then remount the new mount with `flags`.
fn rbind_remount(ctx: &MountCtx, src: &Path, dest: &Path, flags: MsFlags) -> Result<()> {
    let target = reopen(ctx, dest)?;
    do_mount(
        Some(src),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        "",
    )?;
    let top = reopen(ctx, dest)?;
    remount(&top, flags)
}
