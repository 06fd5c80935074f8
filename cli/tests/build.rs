//! `barge build` end to end: real engine, real RUN containers, the busybox image `bb` as base.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Output;

use barge_testutil::engine::BargeEnv;
use barge_testutil::{exec_bounded, CMD_TIMEOUT};

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

/// `barge build ARGS` with extra environment; the output.
fn build(e: &BargeEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    let mut c = e.cmd(&all);
    for (k, v) in vars {
        c.env(k, v);
    }
    exec_bounded(c, CMD_TIMEOUT)
}

fn ok_build(e: &BargeEnv, args: &[&str]) -> (String, String) {
    let out = build(e, args, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build {args:?} failed: {err}");
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), err)
}

fn config(e: &BargeEnv, image: &str) -> serde_json::Value {
    let out = e.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// The image's OCI config blob as stored.
fn oci_config(e: &BargeEnv, image: &str) -> serde_json::Value {
    let id = config(e, image)["Id"].as_str().unwrap().to_string();
    let hex = id.strip_prefix("sha256:").unwrap();
    let blob = e.root().join("content/blobs/sha256").join(hex);
    serde_json::from_slice(&fs::read(blob).unwrap()).unwrap()
}

#[test]
fn multi_stage_build_runs_the_program() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "ARG BASE=bb\n\
                 FROM $BASE AS builder\n\
                 ARG WHO=world\n\
                 RUN mkdir -p /out && printf '#!/bin/sh\\necho hello %s from $0\\n' \"$WHO\" > /out/hello && chmod 755 /out/hello\n\
                 FROM bb AS unused\n\
                 RUN exit 1\n\
                 FROM bb\n\
                 COPY --from=builder /out/hello /usr/local/bin/hello\n\
                 CMD [\"hello\"]\n",
            ),
        ],
    );
    let (id, err) = ok_build(
        &e,
        &[
            "-t",
            "hello:1",
            "--build-arg",
            "WHO=barge",
            "--build-arg",
            "NOBODY=x",
            "--iidfile",
            e.path().join("iid").to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(fs::read_to_string(e.path().join("iid")).unwrap(), id);
    // The unused stage was skipped (its RUN would fail); the unused build arg is warned.
    assert!(!err.contains("[unused]"), "{err}");
    assert!(
        err.contains("build-args [NOBODY] were not consumed"),
        "{err}"
    );
    let out = e.ok(&["run", "--rm", "hello:1"]);
    assert_eq!(out.trim(), "hello barge from /usr/local/bin/hello");
    // No build container is left behind.
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "");
    // --target builds only up to the stage named.
    ok_build(
        &e,
        &[
            "--target",
            "builder",
            "-t",
            "builder:1",
            ctx.to_str().unwrap(),
        ],
    );
    let listed = e.ok(&["run", "--rm", "builder:1", "ls", "/out"]);
    assert_eq!(listed.trim(), "hello");
    // The context as a tar on stdin.
    let tar = e.path().join("ctx.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = e.cmd(&[
        "build",
        "-q",
        "-t",
        "fromtar:1",
        "--build-arg",
        "WHO=tar",
        "-",
    ]);
    c.stdin(fs::File::open(&tar).unwrap());
    let out = exec_bounded(c, CMD_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = e.ok(&["run", "--rm", "fromtar:1"]);
    assert_eq!(out.trim(), "hello tar from /usr/local/bin/hello");
    let hist = e.ok(&["image", "history", "--no-trunc", "hello:1"]);
    assert!(
        hist.contains("COPY --from=builder /out/hello /usr/local/bin/hello"),
        "{hist}"
    );
    assert!(hist.contains("CMD [\"hello\"]"), "{hist}");
}

#[test]
fn every_instruction_lands_in_config_and_filesystem() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[
            ("app/main.sh", "#!/bin/sh\necho main\n"),
            ("app/secret.key", "nope"),
            ("app/notes.md", "notes"),
            ("keep.md", "kept"),
            (".dockerignore", "app/secret.key\n**/*.md\n!keep.md\n"),
            (
                "Dockerfile",
                "FROM bb\n\
                 MAINTAINER someone@example.com\n\
                 ENV APP_HOME=/srv/app LEVEL=3\n\
                 LABEL org.example.name=\"demo app\" version=1\n\
                 WORKDIR $APP_HOME\n\
                 COPY --chown=user:extra --chmod=0750 app/ ./\n\
                 COPY keep.md ./\n\
                 ADD files.tar.gz /opt/\n\
                 USER user\n\
                 EXPOSE 8080 53/udp\n\
                 VOLUME /data\n\
                 SHELL [\"/bin/sh\", \"-ec\"]\n\
                 STOPSIGNAL SIGINT\n\
                 HEALTHCHECK --interval=30s --timeout=1m30s --retries=4 CMD wget -q localhost:8080\n\
                 ONBUILD RUN echo triggered > /tmp/onbuild\n\
                 ENTRYPOINT [\"/bin/sh\"]\n",
            ),
        ],
    );
    // A gzip tar for ADD to extract.
    let src = e.path().join("tarsrc");
    write(&src, &[("sub/from-tar.txt", "in the tar\n")]);
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(ctx.join("files.tar.gz"))
        .arg("-C")
        .arg(&src)
        .arg("sub")
        .status()
        .unwrap();
    assert!(st.success());
    ok_build(
        &e,
        &[
            "-t",
            "all:1",
            "--label",
            "built.by=test",
            ctx.to_str().unwrap(),
        ],
    );
    let c = oci_config(&e, "all:1");
    let cfg = &c["config"];
    assert_eq!(c["author"], "someone@example.com");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"APP_HOME=/srv/app".to_string()), "{env:?}");
    assert!(env.contains(&"LEVEL=3".to_string()), "{env:?}");
    assert_eq!(cfg["Labels"]["org.example.name"], "demo app");
    assert_eq!(cfg["Labels"]["built.by"], "test");
    assert_eq!(cfg["WorkingDir"], "/srv/app");
    assert_eq!(cfg["User"], "user");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{cfg}");
    assert!(cfg["ExposedPorts"]["53/udp"].is_object(), "{cfg}");
    assert!(cfg["Volumes"]["/data"].is_object(), "{cfg}");
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/sh"]));
    // ENTRYPOINT reset the CMD inherited from bb.
    assert!(cfg["Cmd"].is_null(), "{cfg}");
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "wget -q localhost:8080"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(cfg["Healthcheck"]["Timeout"], 90_000_000_000i64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 4);
    assert_eq!(
        cfg["OnBuild"],
        serde_json::json!(["RUN echo triggered > /tmp/onbuild"])
    );
    // The filesystem: ownership and mode from --chown/--chmod, .dockerignore, ADD extraction.
    let ls = e.ok(&[
        "run",
        "--rm",
        "--user",
        "0",
        "all:1",
        "-c",
        "stat -c '%n %u:%g %a' /srv/app/main.sh; ls -A /srv/app; cat /opt/sub/from-tar.txt",
    ]);
    assert!(ls.contains("/srv/app/main.sh 1000:2000 750"), "{ls}");
    assert!(ls.contains("keep.md"), "{ls}");
    assert!(!ls.contains("secret.key"), "{ls}");
    assert!(!ls.contains("notes.md"), "{ls}");
    assert!(ls.contains("in the tar"), "{ls}");
    // SHELL is the image's shell for RUN; ONBUILD triggers run in a build FROM it.
    let ctx2 = e.path().join("ctx2");
    write(
        &ctx2,
        &[(
            "Dockerfile",
            "FROM all:1\nUSER root\nRUN cat /tmp/onbuild\n",
        )],
    );
    ok_build(&e, &["-t", "child:1", ctx2.to_str().unwrap()]);
    let ran = e.ok(&["run", "--rm", "child:1", "-c", "cat /tmp/onbuild"]);
    assert_eq!(ran.trim(), "triggered");
    let c2 = oci_config(&e, "child:1");
    assert!(
        c2["config"]["OnBuild"].is_null(),
        "triggers are not inherited: {c2}"
    );
    assert_eq!(c2["config"]["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
}

#[test]
fn cache_hits_then_only_what_follows_a_touched_file() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[
            ("a.txt", "a1"),
            ("b.txt", "b1"),
            (
                "Dockerfile",
                "FROM bb\n\
                 RUN echo RAN-STEP-1 | tr A-Z a-z && touch /one\n\
                 COPY a.txt /a.txt\n\
                 RUN echo RAN-STEP-2 | tr A-Z a-z && cat /a.txt > /two\n\
                 COPY b.txt /b.txt\n\
                 RUN echo RAN-STEP-3 | tr A-Z a-z\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    let layers = |name: &str| config(&e, name)["RootFS"]["Layers"].clone();
    let (id1, err) = ok_build(&e, &["-t", "c:1", c]);
    assert_eq!(err.matches("ran-step-").count(), 3, "{err}");
    let first = layers("c:1");
    let (id2, err) = ok_build(&e, &["-t", "c:1", c]);
    assert_eq!(id1, id2, "a fully cached rebuild is the same image");
    assert_eq!(err.matches("ran-step-").count(), 0, "all cached: {err}");
    assert_eq!(err.matches("CACHED").count(), 5, "{err}");
    assert_eq!(first, layers("c:1"), "the cached build has the same layers");
    // A touched (changed) file: what comes before it is cached, what follows is redone.
    fs::write(ctx.join("b.txt"), "b2").unwrap();
    let (_, err) = ok_build(&e, &["-t", "c:1", c]);
    assert!(
        !err.contains("ran-step-1") && !err.contains("ran-step-2"),
        "{err}"
    );
    assert!(err.contains("ran-step-3"), "{err}");
    assert_eq!(err.matches("CACHED").count(), 3, "{err}");
    // mtime alone does not invalidate.
    let f = fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100))
        .unwrap();
    let (_, err) = ok_build(&e, &["-t", "c:1", c]);
    assert_eq!(err.matches("ran-step-").count(), 0, "{err}");
    // --no-cache runs everything.
    let (_, err) = ok_build(&e, &["--no-cache", "-t", "c:1", c]);
    assert_eq!(err.matches("ran-step-").count(), 3, "{err}");
    assert_eq!(e.ok(&["run", "--rm", "c:1", "cat", "/two"]).trim(), "a1");
}

#[test]
fn errors_name_the_line_and_nothing_escapes_the_context() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb\nRUN echo first\nRUN echo some output; echo the last words; exit 3\n",
        )],
    );
    let out = build(&e, &[ctx.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Dockerfile:3: RUN echo some output"), "{err}");
    assert!(err.contains("exited with 3"), "{err}");
    assert!(err.contains("the last words"), "{err}");
    assert_eq!(
        e.ok(&["ps", "-aq"]).trim(),
        "",
        "the failed RUN's container is removed"
    );

    // COPY ../ and a symlink leading out of the context.
    let outside = e.path().join("outside.txt");
    fs::write(&outside, "secret").unwrap();
    std::os::unix::fs::symlink(&outside, ctx.join("link")).unwrap();
    for (df, what) in [
        ("FROM bb\nCOPY ../outside.txt /x\n", "../outside.txt"),
        ("FROM bb\nCOPY link /x\n", "link"),
    ] {
        fs::write(ctx.join("Dockerfile"), df).unwrap();
        let out = build(&e, &[ctx.to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{df}");
        assert!(
            err.contains("Dockerfile:2:")
                && err.contains("outside the build context")
                && err.contains(what),
            "{err}"
        );
    }
    // A destination through an image symlink pointing at the host's / stays in the image.
    let marker = format!("/tmp/barge-build-escape-{}", std::process::id());
    fs::write(ctx.join("f"), "x").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM bb\nRUN ln -s / /hostroot\nCOPY f /hostroot{marker}\n"),
    )
    .unwrap();
    ok_build(&e, &["-t", "esc:1", ctx.to_str().unwrap()]);
    assert!(!Path::new(&marker).exists(), "COPY wrote on the host");
    assert_eq!(e.ok(&["run", "--rm", "esc:1", "cat", &marker]).trim(), "x");
    // ADD of an unreachable URL.
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nADD http://127.0.0.1:1/file.tar /x\n",
    )
    .unwrap();
    let out = build(&e, &[ctx.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:2: ADD http://127.0.0.1:1/file.tar: fetching failed"),
        "{err}"
    );
    // An unknown instruction is the parser's error, with its line.
    fs::write(ctx.join("Dockerfile"), "FROM bb\nFROBNICATE x\n").unwrap();
    let out = build(&e, &[ctx.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn source_date_epoch_builds_are_reproducible() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[
            ("f.txt", "content"),
            (
                "Dockerfile",
                "FROM bb\nRUN mkdir /built && date > /built/when && echo x > /built/x\nCOPY f.txt /built/\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    let vars = [("SOURCE_DATE_EPOCH", "1700000000")];
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let out = build(&e, &["--no-cache", c], &vars);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    // `date` differs between the runs only in its seconds; with the same second the layer
    // is the same. Compare layers but /built/when: the COPY layer and the config times.
    let c0 = config(&e, &ids[0]);
    assert_eq!(c0["Created"], "2023-11-14T22:13:20Z");
    let l0 = c0["RootFS"]["Layers"].clone();
    let l1 = config(&e, &ids[1])["RootFS"]["Layers"].clone();
    assert_eq!(l0[2], l1[2], "the COPY layer is byte-for-byte the same");
    // Without a time-dependent RUN the whole image is the same.
    fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nRUN mkdir /built && echo x > /built/x\nCOPY f.txt /built/\nENV A=1\n",
    )
    .unwrap();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let out = build(&e, &["--no-cache", c], &vars);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn heredoc_run_and_foreign_platform_refused_up_front() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb\nRUN <<EOF\nset -e\necho heredoc > /hd\necho second >> /hd\nEOF\nRUN cat > /cat.txt <<'END'\nliteral $HOME\nEND\nCOPY --chmod=0755 <<EOF /usr/bin/hello-hd\n#!/bin/sh\necho hi from a heredoc\nEOF\n",
        )],
    );
    ok_build(&e, &["-t", "hd:1", ctx.to_str().unwrap()]);
    let out = e.ok(&["run", "--rm", "hd:1", "cat", "/hd", "/cat.txt"]);
    assert_eq!(out, "heredoc\nsecond\nliteral $HOME\n");
    assert_eq!(
        e.ok(&["run", "--rm", "hd:1", "hello-hd"]).trim(),
        "hi from a heredoc"
    );
    // Another architecture without qemu registered in binfmt_misc: a clear error, and
    // nothing ran (no container, no new image).
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists() {
        refused_up_front(&e, &ctx, "linux/arm64", "qemu-aarch64");
    }
}

/// A build of `ctx` for `platform`, whose emulator `qemu` is not registered: a clear error
/// naming it, and nothing ran (no step, no container, no new image).
fn refused_up_front(e: &BargeEnv, ctx: &Path, platform: &str, qemu: &str) {
    let before = e.ok(&["images", "-q"]);
    let out = build(e, &["--platform", platform, ctx.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(qemu) && err.contains("binfmt_misc"), "{err}");
    assert!(!err.contains("#1"), "nothing may run first: {err}");
    assert_eq!(e.ok(&["images", "-q"]), before);
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn a_killed_build_is_cleaned_up_by_the_next() {
    let e = env();
    let ctx = e.path().join("ctx");
    write(&ctx, &[("Dockerfile", "FROM bb\nRUN sleep 30\n")]);
    let mut child = e
        .cmd(&["build", "-q", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = e.wait_for(std::time::Duration::from_secs(20), || {
        !e.ok(&["ps", "-q"]).trim().is_empty()
    });
    assert!(running, "the RUN container never started");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!e.ok(&["ps", "-aq"]).trim().is_empty(), "left behind");
    fs::write(ctx.join("Dockerfile"), "FROM bb\nENV A=1\n").unwrap();
    ok_build(&e, &[ctx.to_str().unwrap()]);
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "", "the next build removed it");
}

#[test]
fn c_program_compiled_with_gcc_in_one_stage_runs_in_busybox() {
    let e = env();
    // A "gcc" image made locally from the host's toolchain.
    let root = e.path().join("gccroot");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gcc_rootfs.sh");
    let st = std::process::Command::new("sh")
        .arg(&script)
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "gcc_rootfs.sh");
    // Loaded as an OCI archive gzipped by the host (an import would compress 56 MB with the
    // debug build's gzip: most of a minute).
    let archive = e.path().join("gcc-oci.tar");
    let st = std::process::Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci_archive.sh"))
        .arg(&root)
        .arg(&archive)
        .arg("docker.io/library/hostgcc:local")
        .status()
        .unwrap();
    assert!(st.success(), "oci_archive.sh");
    e.ok(&["load", "-i", archive.to_str().unwrap()]);
    let ctx = e.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "hello.c",
                "#include <stdio.h>\nint main(void) { printf(\"hello from C, %d\\n\", 6 * 7); return 0; }\n",
            ),
            (
                "Dockerfile",
                "FROM hostgcc:local AS build\n\
                 COPY hello.c /src/\n\
                 RUN gcc -static -O2 -o /hello /src/hello.c\n\
                 FROM bb\n\
                 COPY --from=build /hello /usr/local/bin/hello\n\
                 CMD [\"hello\"]\n",
            ),
        ],
    );
    ok_build(&e, &["-t", "chello:1", ctx.to_str().unwrap()]);
    assert_eq!(
        e.ok(&["run", "--rm", "chello:1"]).trim(),
        "hello from C, 42"
    );
}

/// Is qemu's binfmt_misc entry for `qemu` enabled with the F (fix-binary) flag?
fn emulator_ready(qemu: &str) -> bool {
    fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(qemu))
        .map(|t| {
            t.starts_with("enabled")
                && t.lines()
                    .any(|l| l.starts_with("flags:") && l.contains('F'))
        })
        .unwrap_or(false)
}

/// `--platform linux/arm64` and `linux/arm/v7` from busybox images made of Debian's
/// busybox-static for those architectures: the RUN executes under qemu-user-static (it
/// records `uname -m`), the image's config says the platform, the RUN's file is in its layer.
/// Where the kernel has no emulator registered, the build is refused before anything runs.
#[test]
fn cross_builds_run_under_qemu() {
    let e = env();
    for (platform, deb, qemu, machine, arch, variant) in [
        (
            "linux/arm64",
            "arm64",
            "qemu-aarch64",
            "aarch64",
            "arm64",
            "v8",
        ),
        ("linux/arm/v7", "armhf", "qemu-arm", "armv7l", "arm", "v7"),
    ] {
        let tar = e.path().join(format!("bb-{deb}.tar"));
        barge_testutil::foreign_busybox_tar(deb, &tar);
        let base = format!("bb-{deb}:1");
        e.ok(&[
            "import",
            "--platform",
            platform,
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            &base,
        ]);
        let ctx = e.path().join(format!("ctx-{deb}"));
        write(
            &ctx,
            &[
                ("f.txt", "copied\n"),
                (
                    "Dockerfile",
                    &format!(
                        "FROM {base}\nARG TARGETARCH\nRUN mkdir /built && uname -m > /built/machine && echo $TARGETARCH > /built/targetarch\nCOPY f.txt /built/\n"
                    ),
                ),
            ],
        );
        let tag = format!("cross-{deb}:1");
        let out = build(
            &e,
            &["--platform", platform, "-t", &tag, ctx.to_str().unwrap()],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !emulator_ready(qemu) {
            // No emulator: a clear error, before any step.
            assert!(!out.status.success(), "{err}");
            assert!(err.contains(qemu) && err.contains("binfmt_misc"), "{err}");
            assert!(!err.contains("#1"), "nothing may run first: {err}");
            eprintln!("{qemu} is not registered here: checked the refusal only");
            continue;
        }
        assert!(out.status.success(), "cross build {platform}: {err}");
        let oci = oci_config(&e, &tag);
        assert_eq!(oci["architecture"], arch, "{oci}");
        assert_eq!(oci["os"], "linux");
        assert_eq!(oci["variant"].as_str().unwrap_or(""), variant, "{oci}");
        // The RUN's effect, read from the image's filesystem (the container runs under
        // qemu too).
        let got = e.ok(&[
            "run",
            "--rm",
            &tag,
            "cat",
            "/built/machine",
            "/built/targetarch",
            "/built/f.txt",
        ]);
        assert_eq!(got, format!("{machine}\n{arch}\ncopied\n"));
    }
    // An architecture with no emulator registered (riscv64, unless this host registers it):
    // refused before anything runs, naming what is missing.
    if !Path::new("/proc/sys/fs/binfmt_misc/qemu-riscv64").exists() {
        refused_up_front(
            &e,
            &e.path().join("ctx-arm64"),
            "linux/riscv64",
            "qemu-riscv64",
        );
    }
}
