//! The store's permissions, create-request validation with docker's messages, the working
//! directory and volumes filled from the image (issue 14, sections 7).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use barge_testutil::engine::BargeEnv;
use barge_testutil::{exec_bounded, stderr, stdout};

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `barge ARGS` on another root of the same test directory.
fn on_root(b: &BargeEnv, root: &Path, args: &[&str]) -> Output {
    let mut c = b.cmd(args);
    c.env("BARGE_ROOT", root)
        .env("BARGE_RUNROOT", b.path().join("run2"));
    exec_bounded(c, std::time::Duration::from_secs(60))
}

/// Run `sh -c SCRIPT` as nobody (uid and gid 65534, no groups).
fn as_nobody(script: &str) -> Output {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        script,
    ]);
    exec_bounded(c, std::time::Duration::from_secs(20))
}

#[test]
fn a_pre_existing_store_root_is_made_private_and_its_secrets_unreadable() {
    let b = env();
    // nobody may walk the test directory: only the store's own modes protect it.
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (name, m) in [("r777", 0o777), ("r755", 0o755)] {
        let root = b.path().join(name);
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(m)).unwrap();
        let tar = b.path().join("rootfs.tar");
        let o = on_root(
            &b,
            &root,
            &["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), "bb"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let o = on_root(
            &b,
            &root,
            &[
                "run",
                "--rm",
                "-e",
                "DBPASS=hunter2-secret",
                "-v",
                "v4:/data",
                "bb",
                "sh",
                "-c",
                "echo volume-secret > /data/f; chmod 644 /data/f",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        // The metadata database holds the environment (the row outlives the run in the WAL
        // or the file); the modes are what keeps it private.
        assert_eq!(mode(&root), 0o700, "{name}");
        for f in ["barge.db", "barge.db-wal", "barge.db-shm"] {
            let p = root.join(f);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{name}/{f}");
            }
        }
        for d in ["containers", "volumes"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{name}/{d}");
        }
        let r = root.display();
        for script in [
            format!("grep -a DBPASS {r}/barge.db {r}/barge.db-wal"),
            format!("cat {r}/volumes/v4/_data/f"),
            format!("ls {r}/containers"),
        ] {
            let o = as_nobody(&script);
            assert!(
                !o.status.success() && !stdout(&o).contains("secret"),
                "as nobody, {script} succeeded: {}",
                stdout(&o)
            );
        }
        // A database left world-readable (by an older barge) is made private again on open.
        fs::set_permissions(root.join("barge.db"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(on_root(&b, &root, &["ps"]).status.success());
        assert_eq!(mode(&root.join("barge.db")), 0o600, "{name}");
        assert_eq!(mode(&root), 0o700, "{name}");
        // Still usable by root, and the volume kept its data.
        let o = on_root(
            &b,
            &root,
            &["run", "--rm", "-v", "v4:/data", "bb", "cat", "/data/f"],
        );
        assert_eq!(stdout(&o), "volume-secret\n", "{}", stderr(&o));
    }
}

#[test]
fn a_user_who_cannot_use_the_store_is_told_so() {
    let b = env();
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = env!("CARGO_BIN_EXE_barge");
    let root = b.root();
    for cmd in ["ps", "images"] {
        let o = as_nobody(&format!(
            "BARGE_ROOT={} BARGE_RUNROOT={}/nr {bin} {cmd}",
            root.display(),
            b.path().display()
        ));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains(&format!("permission denied on {}", root.display()))
                && err.contains("barge needs root")
                && !err.contains("code 14"),
            "{cmd}: {err}"
        );
    }
}

/// `barge ARGS` fails with exit 125 saying `msg`, and makes no container.
fn refused(b: &BargeEnv, args: &[&str], msg: &str) {
    let before = b.container_dirs();
    let o = b.run(args);
    assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    assert_eq!(b.container_dirs(), before, "{args:?} left a container");
}

#[test]
fn bad_limits_and_mounts_are_refused_with_dockers_messages() {
    let b = env();
    let ncpu = String::from_utf8_lossy(&Command::new("nproc").output().unwrap().stdout)
        .trim()
        .to_string();
    let cpus_msg =
        format!("range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available");
    for cmd in ["run", "create"] {
        refused(
            &b,
            &[cmd, "-m", "-1", "bb", "true"],
            "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'",
        );
        refused(&b, &[cmd, "--cpus", "-1", "bb", "true"], &cpus_msg);
        refused(&b, &[cmd, "--cpus", "1000", "bb", "true"], &cpus_msg);
        for m in ["1", "4k", "5m"] {
            refused(
                &b,
                &[cmd, "-m", m, "bb", "true"],
                "Minimum memory limit allowed is 6MB",
            );
        }
        refused(
            &b,
            &[cmd, "-v", "/tmp:/", "bb", "true"],
            "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
        );
        refused(
            &b,
            &[cmd, "-w", "rel", "bb", "true"],
            "the working directory 'rel' is invalid, it needs to be an absolute path",
        );
    }
    // The limits that are valid still work: 0 means none, 6MB and the CPU count are allowed.
    let o = b.run(&["run", "--rm", "-m", "6m", "--cpus", &ncpu, "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "-m", "0", "--cpus", "0", "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_working_directory_is_created_in_the_rootfs() {
    let b = env();
    let o = b.run(&[
        "run",
        "--rm",
        "-w",
        "/nonexist/deeper",
        "bb",
        "sh",
        "-c",
        "pwd; stat -c '%u:%g %a' .",
    ]);
    assert_eq!(stdout(&o), "/nonexist/deeper\n0:0 755\n", "{}", stderr(&o));
    // A symlink in the image is followed inside the rootfs, never to the host's.
    seeded_image(&b);
    let o = b.run(&["run", "--rm", "-w", "/escape/newdir", "seeded", "pwd"]);
    // (pwd shows the symlink resolved, in the container's tree)
    let inside = b.path().join("outside/newdir");
    assert_eq!(
        stdout(&o),
        format!("{}\n", inside.display()),
        "{}",
        stderr(&o)
    );
    assert!(!b.path().join("outside/newdir").exists());
    // A file where the directory should be is refused.
    let o = b.run(&["run", "--rm", "-w", "/bin/sh", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Cannot mkdir: /bin/sh is not a directory"),
        "{}",
        stderr(&o)
    );
}

/// An image `seeded` (busybox plus /seed with owners, modes, a symlink and a subdirectory).
fn seeded_image(b: &BargeEnv) {
    let tree = b.path().join("seeded");
    let st = Command::new("cp")
        .args(["-a"])
        .arg(barge_testutil::busybox_rootfs())
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    let seed = tree.join("seed");
    fs::create_dir_all(seed.join("sub")).unwrap();
    fs::write(seed.join("conf"), "from the image\n").unwrap();
    fs::write(seed.join("sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("conf", seed.join("link")).unwrap();
    // An absolute symlink to a host directory of the same path (it must stay inside).
    let outside = b.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("hostfile"), "host\n").unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("escape")).unwrap();
    std::os::unix::fs::chown(seed.join("conf"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(seed.join("conf"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(seed.join("sub"), fs::Permissions::from_mode(0o711)).unwrap();
    std::os::unix::fs::chown(&seed, Some(1000), Some(1000)).unwrap();
    fs::set_permissions(&seed, fs::Permissions::from_mode(0o750)).unwrap();
    let tar = b.path().join("seeded.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("--numeric-owner")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "seeded",
    ]);
}

fn volume_dir(b: &BargeEnv, name: &str) -> PathBuf {
    b.root().join("volumes").join(name).join("_data")
}

#[test]
fn a_new_volume_is_filled_with_the_images_content_once() {
    let b = env();
    seeded_image(&b);
    let ls = "cd /seed && cat conf sub/deep && stat -c '%n %u:%g %a' . conf sub && readlink link";
    let want = "from the image\ndeep\n. 1000:1000 750\nconf 1234:5678 640\nsub 0:0 711\nconf\n";
    let o = b.run(&[
        "run",
        "--rm",
        "-v",
        "filled:/seed",
        "seeded",
        "sh",
        "-c",
        ls,
    ]);
    assert_eq!(stdout(&o), want, "{}", stderr(&o));
    let d = volume_dir(&b, "filled");
    assert_eq!(fs::metadata(d.join("conf")).unwrap().uid(), 1234);
    assert_eq!(mode(&d), 0o750);

    // A volume with content is not overwritten (nor topped up).
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "filled:/seed",
        "seeded",
        "sh",
        "-c",
        "rm /seed/conf; echo mine > /seed/own",
    ]);
    let o = b.run(&["run", "--rm", "-v", "filled:/seed", "seeded", "ls", "/seed"]);
    assert_eq!(stdout(&o), "link\nown\nsub\n", "{}", stderr(&o));

    // nocopy: the new volume stays empty.
    let o = b.run(&[
        "run",
        "--rm",
        "-v",
        "bare:/seed:nocopy",
        "seeded",
        "ls",
        "-A",
        "/seed",
    ]);
    assert_eq!(stdout(&o), "", "{}", stderr(&o));
    assert_eq!(fs::read_dir(volume_dir(&b, "bare")).unwrap().count(), 0);

    // A bind mount is never filled.
    let host = b.path().join("bind");
    fs::create_dir(&host).unwrap();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/seed", host.display()),
        "seeded",
        "true",
    ]);
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0);

    // A mount point behind an absolute symlink is looked up inside the rootfs only.
    b.ok(&["run", "--rm", "-v", "esc:/escape", "seeded", "true"]);
    assert_eq!(fs::read_dir(volume_dir(&b, "esc")).unwrap().count(), 0);

    // A mount point the image does not have: an empty volume, no error.
    let o = b.run(&[
        "run",
        "--rm",
        "-v",
        "other:/nothing/here",
        "seeded",
        "ls",
        "-A",
        "/nothing/here",
    ]);
    assert_eq!(stdout(&o), "", "{}", stderr(&o));
}
