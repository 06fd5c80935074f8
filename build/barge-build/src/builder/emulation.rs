//! Cross-building: RUN steps for another architecture execute under qemu-user-static, which
//! the kernel starts through binfmt_misc. Before anything runs, [`check`] makes sure the
//! emulator for the target is registered, enabled, and registered with the `F` (fix-binary)
//! flag: without it the kernel looks the interpreter up inside the build container's root,
//! where it does not exist, and every RUN would fail with "no such file".

use std::path::Path;

use barge_image::platform::Platform;

use super::error::{BuildError, Result};

/// Where the kernel's binfmt_misc registrations are.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The qemu-user-static entry for an architecture (Debian's names), or None if barge knows
/// no emulator for it.
pub fn emulator(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "arm64" => "qemu-aarch64",
        "arm" => "qemu-arm",
        "amd64" => "qemu-x86_64",
        "riscv64" => "qemu-riscv64",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "386" => "qemu-i386",
        "mips64le" => "qemu-mips64el",
        _ => return None,
    })
}

/// Does a build for `p` on this host need an emulator for its RUN steps?
pub fn is_foreign(p: &Platform) -> bool {
    let host = Platform::host();
    !(p.architecture == host.architecture && p.os == host.os)
}

/// Can RUN steps for `p` execute here, with binfmt_misc at `binfmt_dir`? An error saying
/// what is missing and how to get it when not.
pub fn check(p: &Platform, binfmt_dir: &Path) -> Result<()> {
    if !is_foreign(p) {
        return Ok(());
    }
    let Some(qemu) = emulator(&p.architecture) else {
        return Err(BuildError::other(format!(
            "--platform {p}: RUN steps need an emulator and barge knows none for {}",
            p.architecture
        )));
    };
    if !binfmt_dir.join("register").exists() {
        return Err(BuildError::other(format!(
            "--platform {p}: RUN steps need {qemu} registered in binfmt_misc, which is not mounted at {}: mount it (mount -t binfmt_misc binfmt_misc {}) and register qemu-user-static (update-binfmts --enable {qemu}), or build on a {p} machine",
            binfmt_dir.display(),
            binfmt_dir.display()
        )));
    }
    let reg = binfmt_dir.join(qemu);
    let text = match std::fs::read_to_string(&reg) {
        Ok(t) => t,
        Err(_) => {
            return Err(BuildError::other(format!(
                "--platform {p}: RUN steps need {qemu} registered in binfmt_misc ({} is missing): install qemu-user-static and binfmt-support and run update-binfmts --enable {qemu} (a kernel that refuses the registration cannot cross-build), or build on a {p} machine",
                reg.display()
            )))
        }
    };
    if text.lines().next() != Some("enabled") {
        return Err(BuildError::other(format!(
            "--platform {p}: {qemu} is registered in binfmt_misc but disabled ({}): update-binfmts --enable {qemu}",
            reg.display()
        )));
    }
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap_or_default();
    if !flags.contains('F') {
        return Err(BuildError::other(format!(
            "--platform {p}: {qemu} is registered in binfmt_misc without the F (fix-binary) flag ({}), so the emulator cannot be found inside build containers: register it with F (Debian's qemu-user-static does: update-binfmts --disable {qemu} && update-binfmts --enable {qemu})",
            reg.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign() -> Platform {
        let arch = if Platform::host().architecture == "arm64" {
            "amd64"
        } else {
            "arm64"
        };
        Platform::parse(&format!("linux/{arch}")).unwrap()
    }

    #[test]
    fn every_missing_piece_is_named() {
        let p = foreign();
        let qemu = emulator(&p.architecture).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The host's own platform needs nothing.
        assert!(check(&Platform::host(), dir.path()).is_ok());
        // Not mounted.
        let e = check(&p, dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("not mounted") && e.contains("mount -t binfmt_misc"),
            "{e}"
        );
        // Mounted, not registered.
        std::fs::write(dir.path().join("register"), "").unwrap();
        let e = check(&p, dir.path()).unwrap_err().to_string();
        assert!(e.contains(qemu) && e.contains("is missing"), "{e}");
        // Registered, disabled.
        let entry = dir.path().join(qemu);
        std::fs::write(&entry, "disabled\ninterpreter /x\nflags: PF\n").unwrap();
        let e = check(&p, dir.path()).unwrap_err().to_string();
        assert!(e.contains("disabled"), "{e}");
        // Enabled without F.
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: P\n").unwrap();
        let e = check(&p, dir.path()).unwrap_err().to_string();
        assert!(e.contains("fix-binary"), "{e}");
        // Enabled with F.
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: PF\noffset 0\n").unwrap();
        check(&p, dir.path()).unwrap();
        // An architecture barge knows no emulator for.
        let odd = Platform::parse("linux/sparc64").unwrap();
        let e = check(&odd, dir.path()).unwrap_err().to_string();
        assert!(e.contains("knows none"), "{e}");
    }
}
