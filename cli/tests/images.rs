//! The image commands end to end, through the `barge` binary, against a real local registry.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use barge_testutil::oci_image::{push_image, Comp, Entry, Image, Layer};
use barge_testutil::registry::{skopeo_copy_with, Registry};
use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
use barge_testutil::{exec_bounded, ok, stderr, CMD_TIMEOUT};

struct Barge {
    dir: tempfile::TempDir,
}

impl Barge {
    fn new() -> Barge {
        Barge {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("etc")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_barge"));
        c.arg("--root")
            .arg(self.root())
            .arg("--config")
            .arg(self.config())
            .args(args);
        c.stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        exec_bounded(self.cmd(args), CMD_TIMEOUT)
    }
    fn images_json(&self) -> Vec<serde_json::Value> {
        ok(&self.run(&["images", "--format", "json"]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn blobs(&self) -> usize {
        fs::read_dir(self.root().join("content/blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
    fn snapshot_dirs(&self) -> usize {
        fs::read_dir(self.root().join("snapshots"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn failed(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure: {o:?}");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    stderr(o)
}

#[test]
fn pull_images_tag_inspect_rmi() {
    let reg = Registry::start();
    let built = push_image(&reg, "tools/busybox", "1.36", &Image::busybox());
    let b = Barge::new();
    let name = format!("{}/tools/busybox:1.36", reg.addr);
    let out = b.run(&["pull", &name]);
    let text = ok(&out);
    assert!(
        text.contains(&format!("Digest: {}", built.manifest_digest)),
        "{text}"
    );
    assert!(
        text.contains("Status: Downloaded newer image for"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("Pull complete"),
        "plain progress lines without a terminal: {}",
        stderr(&out)
    );
    let again = ok(&b.run(&["pull", &name]));
    assert!(again.contains("Image is up to date"), "{again}");

    let table = ok(&b.run(&["images"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY") && lines[0].contains("IMAGE ID"),
        "{table}"
    );
    let id = &built.config_digest[7..19];
    assert!(
        lines[1].contains(&format!("{}/tools/busybox", reg.addr))
            && lines[1].contains("1.36")
            && lines[1].contains(id),
        "{table}"
    );
    let size = fs::metadata("/bin/busybox").unwrap().len();
    let json = b.images_json();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["ID"], id);
    assert_eq!(json[0]["Tag"], "1.36");
    let shown = json[0]["Size"].as_str().unwrap();
    assert!(
        shown.ends_with("MB") || shown.ends_with("kB"),
        "{shown} for {size} bytes"
    );

    ok(&b.run(&["tag", &name, "local/bb:mine"]));
    ok(&b.run(&["tag", id, "other"]));
    assert_eq!(b.images_json().len(), 3);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&b.run(&["image", "inspect", "local/bb:mine"]))).unwrap();
    assert_eq!(inspect[0]["Id"], built.config_digest);
    assert_eq!(inspect[0]["Os"], "linux");
    assert_eq!(inspect[0]["Architecture"], "amd64");
    assert_eq!(inspect[0]["RootFS"]["Layers"][0], built.diff_ids[0]);
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    let tags = inspect[0]["RepoTags"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t == "other:latest") && tags.iter().any(|t| t == "local/bb:mine"),
        "{tags:?}"
    );

    // By ID with several repositories: refused without -f, nothing removed.
    let err = failed(&b.run(&["rmi", id]));
    assert!(err.contains("multiple repositories"), "{err}");
    assert_eq!(b.images_json().len(), 3);
    let out = ok(&b.run(&["rmi", "other", "local/bb:mine"]));
    assert!(
        out.contains("Untagged: other:latest") && !out.contains("Deleted"),
        "{out}"
    );
    assert!(b.blobs() >= 3, "image still named: content stays");
    let out = ok(&b.run(&["image", "rm", &name]));
    assert!(
        out.contains(&format!("Deleted: {}", built.config_digest)),
        "{out}"
    );
    assert!(b.images_json().is_empty());
    assert_eq!(b.blobs(), 0, "unreferenced blobs collected");
    assert_eq!(b.snapshot_dirs(), 0, "unreferenced layers collected");
}

#[test]
fn bad_input_is_refused_clearly() {
    let b = Barge::new();
    let err = failed(&b.run(&["pull", "Bad Ref!"]));
    assert!(err.contains("Bad Ref!"), "{err}");
    let err = failed(&b.run(&["pull", "127.0.0.1:1/nothing:here"]));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let err = failed(&b.run(&["rmi", "nope"]));
    assert!(err.contains("nope") && err.contains("not found"), "{err}");
    let err = failed(&b.run(&["tag", "nope", "x"]));
    assert!(err.contains("nope"), "{err}");
    let err = failed(&b.run(&["pull", "--platform", "linux//", "busybox"]));
    assert!(err.contains("platform"), "{err}");
    let err = failed(&b.run(&["images", "--format", "yaml"]));
    assert!(err.contains("yaml"), "{err}");
    let err = failed(&b.run(&["load", "-i", "/nonexistent.tar"]));
    assert!(err.contains("/nonexistent.tar"), "{err}");
    fs::write(
        b.dir.path().join("junk.tar"),
        b"definitely not a tar archive, just text",
    )
    .unwrap();
    let junk = b.dir.path().join("junk.tar");
    let err = failed(&b.run(&["load", "-i", junk.to_str().unwrap()]));
    assert!(err.contains("junk.tar"), "{err}");
    let err = failed(&b.run(&["image", "inspect", "ghost"]));
    assert!(err.contains("ghost"), "{err}");
    assert!(b.images_json().is_empty());
    assert_eq!(b.blobs(), 0);
}

#[test]
fn save_load_import_round_trip_with_skopeo() {
    let reg = Registry::start();
    let mut top = Layer::new(
        Comp::Zstd,
        vec![
            Entry::file("etc/motd", "hello from barge\n", 0o644),
            Entry::whiteout("bin/cat"),
        ],
    );
    top.entries.push(Entry::dir("srv", 0o755));
    let built = push_image(
        &reg,
        "app",
        "2",
        &Image::new(vec![Layer::busybox(Comp::Gzip), top]),
    );
    let a = Barge::new();
    let name = format!("{}/app:2", reg.addr);
    ok(&a.run(&["pull", "-q", &name]));
    let archive = a.dir.path().join("app.tar");
    ok(&a.run(&["save", "-o", archive.to_str().unwrap(), &name]));
    // skopeo reads our archive both ways, with the same layers.
    let mut seen = Vec::new();
    for kind in ["docker-archive", "oci-archive"] {
        let insp = Command::new("skopeo")
            .args(["inspect", &format!("{kind}:{}", archive.display())])
            .output()
            .unwrap();
        assert!(
            insp.status.success(),
            "skopeo inspect {kind}: {}",
            String::from_utf8_lossy(&insp.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&insp.stdout).unwrap();
        assert_eq!(
            v["Layers"].as_array().map(|l| l.len()),
            Some(2),
            "{kind}: {v}"
        );
        seen.push(v["Layers"].clone());
    }
    // docker-archive names layers by their uncompressed digests, OCI by the blobs'.
    assert_eq!(seen[0], serde_json::json!(built.diff_ids));
    assert_eq!(seen[1], serde_json::json!(built.layer_digests));

    let b = Barge::new();
    let out = ok(&b.run(&["load", "-i", archive.to_str().unwrap()]));
    assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    let json = b.images_json();
    assert_eq!(json[0]["ID"], &built.config_digest[7..19]);

    // skopeo's own docker-archive (no zstd there: a gzip image) loads too, from stdin.
    let gz = Layer::new(Comp::Gzip, vec![Entry::file("etc/motd", "gzip\n", 0o644)]);
    push_image(
        &reg,
        "gz",
        "1",
        &Image::new(vec![Layer::busybox(Comp::Gzip), gz]),
    );
    let sk = b.dir.path().join("sk.tar");
    let src = format!("docker://{}/gz:1", reg.addr);
    let dst = format!("docker-archive:{}:skopeo/app:3", sk.display());
    skopeo_copy_with(&["--src-tls-verify=false", &src, &dst]);
    let mut cmd = b.cmd(&["load"]);
    cmd.stdin(fs::File::open(&sk).unwrap());
    let out = ok(&exec_bounded(cmd, CMD_TIMEOUT));
    assert!(out.contains("Loaded image: skopeo/app:3"), "{out}");

    // import: a one-layer image from a rootfs tarball.
    let rootfs = b.dir.path().join("rootfs.tar.gz");
    let tar = Command::new("tar")
        .args([
            "-czf",
            rootfs.to_str().unwrap(),
            "-C",
            barge_testutil::busybox_rootfs().to_str().unwrap(),
            ".",
        ])
        .output()
        .unwrap();
    assert!(tar.status.success(), "{tar:?}");
    let id = ok(&b.run(&[
        "import",
        "-c",
        "CMD [\"/bin/sh\"]",
        "-c",
        "ENV APP=1",
        rootfs.to_str().unwrap(),
        "mine/rootfs:v1",
    ]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&b.run(&["image", "inspect", "mine/rootfs:v1"]))).unwrap();
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert!(inspect[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "APP=1"));
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
}

#[test]
fn login_logout_basic_auth() {
    let reg = Registry::start_basic_auth("carol", "pa55");
    push_image(&reg, "private", "1", &Image::busybox());
    let b = Barge::new();
    let name = format!("{}/private:1", reg.addr);
    let err = failed(&b.run(&["pull", &name]));
    assert!(err.contains(&reg.addr), "{err}");
    let err = failed(&b.run(&["login", "-u", "carol", "-p", "wrong", &reg.addr]));
    assert!(err.contains("refused"), "{err}");
    assert!(
        !b.config().join("auth.json").exists(),
        "bad credentials are not stored"
    );
    let mut cmd = b.cmd(&["login", "-u", "carol", "--password-stdin", &reg.addr]);
    let input = b.dir.path().join("pw");
    fs::write(&input, "pa55\n").unwrap();
    cmd.stdin(fs::File::open(&input).unwrap());
    assert!(ok(&exec_bounded(cmd, CMD_TIMEOUT)).contains("Login Succeeded"));
    let auth = b.config().join("auth.json");
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !fs::read_to_string(&auth).unwrap().contains("pa55"),
        "stored encoded, not as plain text"
    );
    ok(&b.run(&["pull", &name]));
    assert!(ok(&b.run(&["logout", &reg.addr])).contains("Removing login credentials"));
    ok(&b.run(&["rmi", &name]));
    failed(&b.run(&["pull", &name]));
}

/// Kill `barge pull` with SIGKILL at several moments of a slow download; after each kill the
/// store is consistent (no image, `images` works, the database is intact), and the last pull
/// resumes what is on disk and finishes.
#[test]
fn pull_killed_at_any_moment_resumes() {
    let reg = Registry::start();
    let mut big = Layer::new(Comp::None, vec![]);
    let data = barge_testutil::noise(4 << 20, 99);
    big.entries.push(Entry::file("blob", data.clone(), 0o644));
    let built = push_image(
        &reg,
        "slow",
        "1",
        &Image::new(vec![Layer::busybox(Comp::Gzip), big]),
    );
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            bytes_per_sec: Some(8 << 20),
            ..Default::default()
        },
    );
    let b = Barge::new();
    let name = format!("{}/slow:1", proxy.addr);
    // Kill once right after start, then whenever the big layer's partial download has grown
    // past the next threshold (polled, so it holds on a loaded machine too).
    let partial = b.root().join(format!(
        "content/ingest/{}.partial",
        &built.layer_digests[1][7..]
    ));
    for threshold in [None, Some(500_000u64), Some(1_500_000), Some(3_000_000)] {
        let mut child = b
            .cmd(&["pull", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        match threshold {
            None => std::thread::sleep(Duration::from_millis(5)),
            Some(t) => {
                while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < t
                    && child.try_wait().unwrap().is_none()
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the pull finished before it could be killed at {threshold:?}"
        );
        // Consistent after the kill: no image, and the store answers.
        assert!(b.images_json().is_empty());
    }
    let out = b.run(&["pull", &name]);
    let text = ok(&out);
    assert!(text.contains("Status:"), "{text}");
    // The big layer continued from the bytes already on disk (at least the last threshold).
    let layer = &built.layer_digests[1];
    let ranges: Vec<Option<String>> = proxy
        .blob_requests()
        .into_iter()
        .filter(|(p, _)| p.ends_with(layer.as_str()))
        .map(|(_, r)| r)
        .collect();
    let last = ranges.last().cloned().flatten().unwrap_or_default();
    let from: u64 = last
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap_or(0);
    assert!(
        from >= 3_000_000,
        "the last pull did not resume: {ranges:?}\n{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("Resuming at byte {from}")),
        "{}",
        stderr(&out)
    );
    // And the image is whole: check the big file through a merged mount of its layers.
    let store = barge_image::store::Store::open(&b.root()).unwrap();
    let rec = store.resolve(&name).unwrap();
    let img = store.image(&rec).unwrap();
    let top = store.db.snapshot(img.chain[1].as_str()).unwrap().unwrap();
    assert!(fs::read(store.snapshots.fs_dir(top.id).join("blob")).unwrap() == data);
    // Nothing stray: prune leaves exactly the image's two layers and no partial downloads.
    drop(store);
    ok(&b.run(&["image", "prune", "-f"]));
    assert_eq!(b.snapshot_dirs(), 2);
    assert_eq!(
        fs::read_dir(b.root().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}
