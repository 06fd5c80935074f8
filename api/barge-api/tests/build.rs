//! `docker build` (the docker 28 CLI's legacy builder, `DOCKER_BUILDKIT=0`) and docker-py's
//! `images.build` against `barge daemon`: the image equals what `barge build` makes of the same
//! context; `.dockerignore`, `--target`, `-f`, `--build-arg`, `-q`, `--compress`; a failing RUN
//! reported with its Dockerfile line; hostile context tars and Dockerfile paths refused with
//! nothing written outside the build's own directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use barge_testutil::{exec_bounded, CMD_TIMEOUT};
use common::*;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

/// `docker build ARGS` with the legacy builder.
fn docker_build(d: &Daemon, args: &[&str]) -> std::process::Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let mut c = d.docker_cmd(&all);
    c.env("DOCKER_BUILDKIT", "0");
    exec_bounded(c, DOCKER_TIMEOUT)
}

/// The entries of a directory, by name.
fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What uploads left behind: the contexts in `build-contexts/<daemon pid>/`.
fn leftovers(d: &Daemon) -> Vec<String> {
    let dir = d.store.root().join("build-contexts");
    names(&dir)
        .into_iter()
        .flat_map(|pid| names(&dir.join(&pid)))
        .collect()
}

const DOCKERFILE: &str = "FROM bb AS base
ARG GREETING=hello
RUN echo \"$GREETING from run\" > /greeting
FROM base AS app
COPY data/ /data/
RUN cat /data/a.txt && ls /data > /listing
LABEL stage=app
CMD [\"cat\", \"/greeting\"]
FROM bb AS unused
RUN exit 7
";

/// docker build -t --build-arg --target -f sub/Dockerfile with a .dockerignore, compared with
/// barge build of the same directory: the same image ID (SOURCE_DATE_EPOCH for both), and
/// `docker run` prints what the RUN wrote.
#[test]
fn docker_build_makes_the_image_barge_build_makes() {
    let d = Daemon::start();
    let ctx = d.store.path().join("ctx");
    write(
        &ctx,
        &[
            ("sub/Dockerfile", DOCKERFILE),
            ("data/a.txt", "file a\n"),
            ("data/b.txt", "file b\n"),
            ("data/secret.txt", "do not send\n"),
            ("data/debug.log", "noise\n"),
            (".dockerignore", "data/secret.txt\n**/*.log\n"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let o = docker_build(
        &d,
        &[
            "-t",
            "apibuilt:1",
            "--no-cache",
            "--build-arg",
            "GREETING=ahoy",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "--target",
            "app",
            "-f",
            &format!("{c}/sub/Dockerfile"),
            c,
        ],
    );
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "docker build failed: {out}\n{}\n{}",
        stderr(&o),
        d.log()
    );
    assert!(out.contains("Step 1/"), "{out}");
    assert!(out.contains(": RUN cat /data/a.txt"), "{out}");
    assert!(out.contains("file a\n"), "RUN output is streamed: {out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged apibuilt:1"), "{out}");
    assert!(
        !out.contains("exit 7"),
        "the unused stage is not built: {out}"
    );
    let docker_id = d.inspect("apibuilt:1", "{{.Id}}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "apibuilt:1"]),
        "ahoy from run\n"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "apibuilt:1", "cat", "/listing"]),
        "a.txt\nb.txt\n",
        ".dockerignore applied"
    );
    assert_eq!(d.inspect("apibuilt:1", "{{.Config.Labels.stage}}"), "app");
    // barge build of the same directory, the same inputs.
    let mut cmd = d.store.cmd(&[
        "build",
        "--progress",
        "plain",
        "--no-cache",
        "-t",
        "cli:1",
        "--build-arg",
        "GREETING=ahoy",
        "--target",
        "app",
        "-f",
        &format!("{c}/sub/Dockerfile"),
        c,
    ]);
    cmd.env("SOURCE_DATE_EPOCH", "1700000000");
    let o = exec_bounded(cmd, CMD_TIMEOUT);
    assert!(o.status.success(), "barge build: {}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        docker_id,
        "the same image, byte for byte"
    );
    assert_eq!(
        leftovers(&d),
        Vec::<String>::new(),
        "the context dir is gone"
    );
    // A cached rebuild through the API says so; -q prints only the ID.
    let o = docker_build(
        &d,
        &[
            "-q",
            "--build-arg",
            "GREETING=ahoy",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1700000000",
            "--target",
            "app",
            "-f",
            &format!("{c}/sub/Dockerfile"),
            c,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), docker_id);
    let o = docker_build(
        &d,
        &[
            "--compress",
            "--build-arg",
            "GREETING=ahoy",
            "--target",
            "base",
            "-f",
            &format!("{c}/sub/Dockerfile"),
            c,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Using cache"), "{}", stdout(&o));
}

/// A failing RUN: docker exits non-zero with the Dockerfile line and the exit code; no image,
/// no build container left.
#[test]
fn a_failing_run_is_reported_with_its_line() {
    let d = Daemon::start();
    let ctx = d.store.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb\nENV A=1\nRUN echo before-failing && exit 3\nRUN echo never\n",
        )],
    );
    let images = d.docker_ok(&["images", "-q"]);
    let o = docker_build(&d, &["-t", "bad:1", ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exited with 3"), "{err}");
    assert!(stdout(&o).contains("before-failing"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("never"), "{}", stdout(&o));
    assert_eq!(d.docker_ok(&["images", "-q"]), images);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    // A Dockerfile that does not parse, and one that is not there.
    write(&ctx, &[("Dockerfile", "FROM bb\nFROBNICATE x\n")]);
    let o = docker_build(&d, &[ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown instruction"), "{}", stderr(&o));
    let o = docker_build(&d, &["-f", "nope/Dockerfile", ctx.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// A tar with one entry.
fn tar_with(name: &[u8], kind: tar::EntryType, data: &[u8], link: Option<&[u8]>) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    {
        let raw = h.as_old_mut();
        raw.name = [0; 100];
        raw.name[..name.len()].copy_from_slice(name);
        if let Some(l) = link {
            raw.linkname = [0; 100];
            raw.linkname[..l.len()].copy_from_slice(l);
        }
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, data).unwrap();
    let df = b"FROM bb\nCOPY . /ctx/\n";
    let mut h = tar::Header::new_gnu();
    h.set_path("Dockerfile").unwrap();
    h.set_mode(0o644);
    h.set_size(df.len() as u64);
    h.set_cksum();
    b.append(&h, &df[..]).unwrap();
    b.into_inner().unwrap()
}

/// Hostile context tars and Dockerfile paths through the raw API: an error in the stream
/// naming the entry, nothing written outside, no context dir left; bad parameters are 400s.
#[test]
fn hostile_contexts_and_bad_parameters_are_refused() {
    let d = Daemon::start();
    // What a killed daemon (a pid no process has) left goes at the next build.
    let stale = d
        .store
        .root()
        .join("build-contexts/999999999/barge-context-x");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("f"), "x").unwrap();
    let outside = d.store.path().join("escaped");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tar_with(b"../../escaped", tar::EntryType::Regular, b"x", None),
            "../../escaped",
        ),
        (
            tar_with(b"/tmp/abs-escape", tar::EntryType::Regular, b"x", None),
            "abs-escape",
        ),
        (
            tar_with(
                b"link",
                tar::EntryType::Symlink,
                b"",
                Some(b"../../../../escaped"),
            ),
            "link",
        ),
        (
            tar_with(b"dev", tar::EntryType::Char, b"", None),
            "device node",
        ),
    ];
    for (body, needle) in cases {
        let r = d.request("POST", "/build?t=evil:1", &body);
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.contains("errorDetail"), "{text}");
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(!outside.exists());
    }
    assert!(!Path::new("/tmp/abs-escape").exists());
    assert!(
        !stale.parent().unwrap().exists(),
        "the dead daemon's contexts are gone"
    );
    // The Dockerfile must be inside the context.
    let ok_tar = tar_with(b"f.txt", tar::EntryType::Regular, b"x", None);
    for df in ["../../../../etc/passwd", "/etc/passwd/../../.."] {
        let r = d.request(
            "POST",
            &format!("/build?dockerfile={}", df.replace('/', "%2F")),
            &ok_tar,
        );
        let text = r.text();
        assert!(text.contains("errorDetail"), "{df}: {text}");
    }
    // Malformed parameters: 400 before the body is read.
    for q in [
        "buildargs=%7Bnot-json",
        "labels=%5B1%5D",
        "t=UPPER%2FCase",
        "t=a%40sha256%3A0000",
        "platform=linux%2F",
        "nocache=maybe",
        "remote=https%3A%2F%2Fexample.com%2Fx.git",
        "version=2",
    ] {
        let r = d.request("POST", &format!("/build?{q}"), &ok_tar);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }
    assert!(
        d.store.ok(&["images", "-q"]).lines().count() == 1,
        "only bb"
    );
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// docker-py's `client.images.build(path=…, tag=…, buildargs=…)`.
#[test]
fn docker_py_images_build() {
    let d = Daemon::start();
    let ctx = d.store.path().join("pyctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb\nARG WHO\nRUN echo \"built for $WHO\" > /who\nCMD [\"cat\", \"/who\"]\n",
        )],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/scenarios.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script)
        .arg("build")
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("BUILD_CONTEXT", &ctx)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    let o = exec_bounded(c, DOCKER_TIMEOUT);
    assert!(
        o.status.success(),
        "docker-py build failed:\n{}\n{}\ndaemon log:\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
    assert_eq!(d.docker_ok(&["run", "--rm", "pybuilt:2"]), "built for py\n");
}

/// `docker build --platform linux/arm64` from an arm64 busybox image (Debian's
/// busybox-static:arm64): the RUN executes under qemu-user-static and the image is arm64;
/// without the emulator registered, the error comes before any step.
#[test]
fn docker_build_for_arm64() {
    let d = Daemon::start();
    let tar = d.store.path().join("bb-arm64.tar");
    barge_testutil::foreign_busybox_tar("arm64", &tar);
    d.store.ok(&[
        "import",
        "--platform",
        "linux/arm64",
        tar.to_str().unwrap(),
        "bb-arm64:1",
    ]);
    let ctx = d.store.path().join("armctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb-arm64:1\nRUN uname -m > /machine\nCMD [\"cat\", \"/machine\"]\n",
        )],
    );
    let o = docker_build(
        &d,
        &[
            "--platform",
            "linux/arm64",
            "-t",
            "arm:1",
            ctx.to_str().unwrap(),
        ],
    );
    let ready = fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
        .map(|t| {
            t.starts_with("enabled")
                && t.lines()
                    .any(|l| l.starts_with("flags:") && l.contains('F'))
        })
        .unwrap_or(false);
    if !ready {
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("qemu-aarch64"), "{}", stderr(&o));
        assert!(!stdout(&o).contains("Step 1/"), "{}", stdout(&o));
        return;
    }
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(d.inspect("arm:1", "{{.Architecture}}"), "arm64");
    assert_eq!(d.docker_ok(&["run", "--rm", "arm:1"]), "aarch64\n");
}

/// A client that goes away mid-build cancels it before its next step: no image is made, the
/// build container and the context directory go.
#[test]
fn a_client_going_away_cancels_the_build() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    let mut df = String::from("FROM bb\n");
    for i in 1..=8 {
        df.push_str(&format!("RUN sleep 1 && echo step{i}\n"));
    }
    let mut h = tar::Header::new_gnu();
    h.set_path("Dockerfile").unwrap();
    h.set_mode(0o644);
    h.set_size(df.len() as u64);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, df.as_bytes()).unwrap();
    let body = b.into_inner().unwrap();
    let mut s = d.connect();
    let head = format!(
        "POST /build?t=cancelled:1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    // Read until the first RUN's output, then go.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("step1") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(s);
    // The build ends (its context dir goes) well before its 8 RUNs could have.
    let ended = wait_until(std::time::Duration::from_secs(20), || {
        leftovers(&d).is_empty() && d.store.ok(&["ps", "-aq"]).trim().is_empty()
    });
    assert!(ended, "the build did not end:\n{}", d.log());
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("cancelled"), "{images}");
}

/// A base image in a registry with basic auth: the CLI's stored login reaches the daemon in
/// `X-Registry-Config` and the builder's pull uses it (the daemon stores no credentials, so
/// without a login the FROM fails, named).
#[test]
fn base_images_are_pulled_with_x_registry_config() {
    use barge_testutil::oci_image::{push_image, Image};
    use barge_testutil::registry::Registry;
    let reg = Registry::start_basic_auth("erin", "b4se");
    push_image(&reg, "base/bb", "1", &Image::busybox());
    let d = Daemon::start();
    let ctx = d.store.path().join("regctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {}/base/bb:1\nRUN echo pulled > /p\n", reg.addr),
        )],
    );
    let c = ctx.to_str().unwrap();
    let o = docker_build(&d, &["-t", "fromreg:1", c]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("FROM"), "{}", stderr(&o));
    d.docker_ok(&["login", "-u", "erin", "-p", "b4se", &reg.addr]);
    let o = docker_build(&d, &["-t", "fromreg:1", c]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromreg:1", "cat", "/p"]),
        "pulled\n"
    );
}
