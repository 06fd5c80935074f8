//! Pulls from a real registry (Debian's docker-registry on 127.0.0.1), seeded with images the
//! tests build: contents are checked file by file through the mounted overlay.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use barge_image::platform::Platform;
use barge_image::progress::{Event, LayerState};
use barge_image::pull::PullOptions;
use barge_image::Error;
use barge_testutil::oci_image::{push_image, push_index, Comp, Entry, Image, Layer};
use barge_testutil::registry::Registry;
use barge_testutil::token_proxy::TokenProxy;
use common::{env, Collect};

fn busybox_bytes() -> Vec<u8> {
    fs::read("/bin/busybox").unwrap()
}

#[test]
fn single_layer_busybox_file_by_file() {
    let reg = Registry::start();
    let built = push_image(&reg, "busybox", "1", &Image::busybox());
    let e = env();
    let rec = e.pull(&format!("{}/busybox:1", reg.addr)).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(rec.config.as_str(), built.config_digest);
    e.with_rootfs(&rec.name, |root| {
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes());
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap().to_str(),
            Some("busybox")
        );
        assert_eq!(
            fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            fs::metadata(root.join("bin/busybox"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    });
    // Blobs stored under their digests, verified.
    for d in built
        .layer_digests
        .iter()
        .chain([&built.config_digest, &built.manifest_digest])
    {
        let d = barge_image::Digest::parse(d).unwrap();
        assert_eq!(
            barge_image::Digest::of(&fs::read(e.store.content.path(&d)).unwrap()),
            d
        );
    }
    // A second pull finds everything in place.
    let progress = std::sync::Arc::new(Collect::default());
    e.pull_with(
        &format!("{}/busybox:1", reg.addr),
        PullOptions::default(),
        progress.clone(),
    )
    .unwrap();
    let states: Vec<LayerState> = progress
        .events()
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Layer { state, .. } if state != LayerState::Waiting => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(states, vec![LayerState::Exists]);
}

#[test]
fn layers_with_whiteouts_gzip_zstd_and_plain() {
    let reg = Registry::start();
    let mut base = Layer::busybox(Comp::Gzip);
    base.entries.extend([
        Entry::dir("data", 0o755),
        Entry::file("etc/a", "a", 0o644),
        Entry::file("etc/b", "b", 0o644),
        Entry::file("data/x", "x", 0o644),
        Entry::file("data/y", "y", 0o600),
    ]);
    let middle = Layer::new(
        Comp::Zstd,
        vec![
            Entry::whiteout("etc/a"),
            Entry::opaque("data"),
            Entry::file("data/z", "z", 0o644),
        ],
    );
    let top = Layer::new(
        Comp::None,
        vec![
            Entry::file("etc/c", "c", 0o640),
            Entry::hardlink("etc/c2", "etc/c"),
        ],
    );
    push_image(&reg, "layers", "v1", &Image::new(vec![base, middle, top]));
    let e = env();
    let rec = e.pull(&format!("{}/layers:v1", reg.addr)).unwrap();
    e.with_rootfs(&rec.name, |root| {
        assert!(!root.join("etc/a").exists(), "whited out");
        assert_eq!(fs::read_to_string(root.join("etc/b")).unwrap(), "b");
        let mut names: Vec<String> = fs::read_dir(root.join("data"))
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["z"], "opaque dir hides the lower layer's files");
        assert_eq!(fs::read_to_string(root.join("etc/c")).unwrap(), "c");
        let (c, c2) = (
            fs::metadata(root.join("etc/c")).unwrap(),
            fs::metadata(root.join("etc/c2")).unwrap(),
        );
        assert_eq!((c.ino(), c.dev()), (c2.ino(), c2.dev()), "hard link kept");
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes());
    });
    // In the middle layer's own directory: the overlayfs forms of the whiteouts.
    let img = e.store.image(&rec).unwrap();
    let mid = e.store.db.snapshot(img.chain[1].as_str()).unwrap().unwrap();
    let dir = e.store.snapshots.fs_dir(mid.id);
    let wh = fs::symlink_metadata(dir.join("etc/a")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert_eq!(
        xattr::get(dir.join("data"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn multi_arch_index_and_platform_override() {
    let reg = Registry::start();
    let img = |arch: &str, variant: Option<&str>| {
        let mut l = Layer::busybox(Comp::Gzip);
        l.entries.push(Entry::file(
            "etc/arch",
            format!(
                "{arch}{}",
                variant.map(|v| format!("/{v}")).unwrap_or_default()
            ),
            0o644,
        ));
        Image::new(vec![l]).platform(arch, variant)
    };
    let (index, built) = push_index(
        &reg,
        "multi",
        "1",
        &[
            img("amd64", None),
            img("arm64", None),
            img("arm", Some("v7")),
        ],
    );
    let e = env();
    let name = format!("{}/multi:1", reg.addr);
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.target.as_str(), index);
    assert_eq!(rec.manifest.as_str(), built[0].manifest_digest);
    e.with_rootfs(&name, |root| {
        assert_eq!(fs::read_to_string(root.join("etc/arch")).unwrap(), "amd64")
    });
    for (platform, want) in [
        ("linux/arm/v7", 2),
        ("linux/arm64", 1),
        ("linux/arm64/v8", 1),
    ] {
        let opts = PullOptions {
            platform: Platform::parse(platform).unwrap(),
            insecure: false,
        };
        let rec = e.pull_with(&name, opts, Default::default()).unwrap();
        assert_eq!(
            rec.manifest.as_str(),
            built[want].manifest_digest,
            "{platform}"
        );
        e.with_rootfs(&name, |root| {
            assert_eq!(
                fs::read_to_string(root.join("etc/arch")).unwrap(),
                platform
                    .trim_start_matches("linux/")
                    .trim_end_matches("/v8")
            );
        });
    }
    let opts = PullOptions {
        platform: Platform::parse("linux/riscv64").unwrap(),
        insecure: false,
    };
    let err = e
        .pull_with(&name, opts, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux/riscv64") && err.contains("linux/arm/v7"),
        "{err}"
    );
    // The name moved between platforms; only the last one's layers are kept.
    assert_eq!(e.store.db.images().unwrap().len(), 1);
}

#[test]
fn docker_media_types_and_manifest_list() {
    let reg = Registry::start();
    let mut docker = Image::busybox();
    docker.docker_media_types = true;
    let built = push_image(&reg, "docker", "v2", &docker);
    let mut arm = Image::busybox().platform("arm64", None);
    arm.docker_media_types = true;
    let (list, _) = push_index(&reg, "dockerlist", "v2", &[docker.clone(), arm]);
    let e = env();
    let rec = e.pull(&format!("{}/docker:v2", reg.addr)).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    let rec = e.pull(&format!("{}/dockerlist:v2", reg.addr)).unwrap();
    assert_eq!(rec.target.as_str(), list);
    assert_eq!(
        rec.manifest.as_str(),
        built.manifest_digest,
        "amd64 from the list"
    );
    e.with_rootfs(&rec.name, |root| {
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes())
    });
}

#[test]
fn pull_by_digest_and_wrong_digest() {
    let reg = Registry::start();
    let built = push_image(&reg, "bd", "1", &Image::busybox());
    let e = env();
    let rec = e
        .pull(&format!("{}/bd@{}", reg.addr, built.manifest_digest))
        .unwrap();
    assert_eq!(
        rec.name,
        format!("{}/bd@{}", reg.addr, built.manifest_digest)
    );
    let other = barge_image::Digest::of(b"nope");
    let err = e.pull(&format!("{}/bd@{other}", reg.addr)).unwrap_err();
    assert!(
        err.to_string().contains(other.as_str()) || err.to_string().contains("not found"),
        "{err}"
    );
}

#[test]
fn bearer_token_auth_anonymous_and_with_credentials() {
    let reg = Registry::start();
    push_image(&reg, "tok", "1", &Image::busybox());
    // Anonymous tokens (like Docker Hub for public images).
    let proxy = TokenProxy::start(&reg.addr, None);
    let e = env();
    e.pull(&format!("{}/tok:1", proxy.addr)).unwrap();
    assert!(proxy.token_count() >= 1, "a token was fetched");
    assert!(proxy
        .token_queries
        .lock()
        .unwrap()
        .iter()
        .any(|q| q.contains("repository%3Atok%3Apull") || q.contains("repository:tok:pull")));
    // Tokens that need credentials.
    let proxy = TokenProxy::start(&reg.addr, Some(("alice".into(), "s3cret".into())));
    let mut e = env();
    let name = format!("{}/tok:1", proxy.addr);
    let err = e.pull(&name).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    e.assert_empty();
    e.config
        .store_credentials(&proxy.addr, "alice", "wrong")
        .unwrap();
    e.reload_config();
    assert!(e.pull(&name).is_err());
    e.config
        .store_credentials(&proxy.addr, "alice", "s3cret")
        .unwrap();
    e.reload_config();
    e.pull(&name).unwrap();
}

#[test]
fn basic_auth_registry() {
    let reg = Registry::start_basic_auth("bob", "pw");
    push_image(&reg, "basic", "1", &Image::busybox());
    let mut e = env();
    let name = format!("{}/basic:1", reg.addr);
    let err = e.pull(&name).unwrap_err().to_string();
    assert!(err.contains(&reg.addr), "{err}");
    e.config.store_credentials(&reg.addr, "bob", "pw").unwrap();
    e.reload_config();
    e.pull(&name).unwrap();
}

#[test]
fn https_registry_with_configured_ca() {
    let reg = Registry::start_tls();
    // Seed over TLS with skopeo (it trusts nothing here, so no verification while seeding).
    let layout = tempfile::tempdir().unwrap();
    let built = barge_testutil::oci_image::write_image(layout.path(), "1", &Image::busybox());
    barge_testutil::registry::skopeo_copy(
        &format!("oci:{}:1", layout.path().display()),
        &format!("docker://{}/tls:1", reg.addr),
    );
    let e = env();
    let name = format!("{}/tls:1", reg.addr);
    // Loopback without a CA configured means plain HTTP, which a TLS server refuses.
    assert!(e.pull(&name).is_err());
    let certs = e.config_dir().join("certs.d").join(&reg.addr);
    fs::create_dir_all(&certs).unwrap();
    fs::copy(reg.ca_cert.as_ref().unwrap(), certs.join("ca.crt")).unwrap();
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
}

fn hostile(entries: Vec<Entry>) -> Image {
    let mut l = Layer::busybox(Comp::Gzip);
    l.entries.extend(entries);
    Image::new(vec![l])
}

#[test]
fn hostile_layers_fail_cleanly() {
    let reg = Registry::start();
    let e = env();
    let outside = e.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "dotdot",
            vec![Entry::raw_file(
                b"../../../../../../../../evil",
                b"x",
                0o644,
            )],
            "escapes",
        ),
        (
            "symlink",
            vec![
                Entry::symlink("link", outside.to_str().unwrap()),
                Entry::file("link/file", "x", 0o644),
            ],
            "symlink",
        ),
        (
            "hardlink",
            vec![Entry::raw_link(
                tar::EntryType::Link,
                b"etc/pw",
                b"/etc/passwd",
            )],
            "etc/pw",
        ),
        (
            "hardlink-up",
            vec![Entry::raw_link(
                tar::EntryType::Link,
                b"etc/pw",
                b"../../../../etc/passwd",
            )],
            "etc/pw",
        ),
    ];
    for (tag, entries, needle) in cases {
        push_image(&reg, "hostile", tag, &hostile(entries));
        let err = e
            .pull(&format!("{}/hostile:{tag}", reg.addr))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{tag}: {err}");
        e.assert_empty();
    }
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside"
    );
    assert!(!std::path::Path::new("/evil").exists());
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links);
}

#[test]
fn tar_bomb_limits_from_config() {
    let reg = Registry::start();
    let many: Vec<Entry> = (0..50)
        .map(|i| Entry::file(&format!("f/{i}"), "x", 0o644))
        .collect();
    push_image(
        &reg,
        "bomb",
        "entries",
        &Image::new(vec![Layer::new(Comp::Gzip, many)]),
    );
    let big = vec![Entry::file("big", vec![0u8; 3 << 20], 0o644)];
    push_image(
        &reg,
        "bomb",
        "size",
        &Image::new(vec![Layer::new(Comp::Gzip, big)]),
    );
    let mut e = env();
    fs::write(
        e.config_dir().join("config.json"),
        r#"{"max-layer-entries": 20, "max-layer-size": 1048576}"#,
    )
    .unwrap();
    e.reload_config();
    let err = e
        .pull(&format!("{}/bomb:entries", reg.addr))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max-layer-entries"), "{err}");
    e.assert_empty();
    let err = e
        .pull(&format!("{}/bomb:size", reg.addr))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max-layer-size"), "{err}");
    e.assert_empty();
}

#[test]
fn setuid_and_devices_kept_but_store_is_private() {
    let reg = Registry::start();
    let mut dev = tar::Header::new_gnu();
    dev.set_entry_type(tar::EntryType::Char);
    dev.set_path("dev/null2").unwrap();
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_mode(0o666);
    dev.set_size(0);
    dev.set_cksum();
    push_image(
        &reg,
        "suid",
        "1",
        &hostile(vec![
            Entry::file("bin/su", fs::read("/bin/busybox").unwrap(), 0o4755),
            Entry::Raw {
                header: dev,
                data: vec![],
            },
        ]),
    );
    let e = env();
    let rec = e.pull(&format!("{}/suid:1", reg.addr)).unwrap();
    e.with_rootfs(&rec.name, |root| {
        let m = fs::metadata(root.join("bin/su")).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o7777,
            0o4755,
            "setuid kept for the container"
        );
        assert_eq!(m.uid(), 0);
        let d = fs::symlink_metadata(root.join("dev/null2")).unwrap();
        assert!(d.file_type().is_char_device());
        assert_eq!(d.rdev(), nix::sys::stat::makedev(1, 3));
    });
    // The store is 0700: a host user can't reach the setuid binary or the device.
    assert_eq!(
        fs::metadata(e.store.root()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let img = e.store.image(&rec).unwrap();
    let snap = e.store.db.snapshot(img.chain[0].as_str()).unwrap().unwrap();
    let su = e.store.snapshots.fs_dir(snap.id).join("bin/su");
    // (Reading is what the test checks: this VM's kernel lets execve through a 0700
    // directory, see the README's notes.)
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "cat",
        ])
        .arg(&su)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "nobody read the setuid binary: {:?}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ermission denied"),
        "{out:?}"
    );
}

#[test]
fn corrupt_blob_in_registry_is_rejected() {
    let reg = Registry::start();
    let built = push_image(&reg, "corrupt", "1", &Image::busybox());
    // Flip a byte of the layer blob in the registry's own storage.
    let hex = built.layer_digests[0].trim_start_matches("sha256:");
    let data = reg.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    let e = env();
    let err = e
        .pull(&format!("{}/corrupt:1", reg.addr))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("digest mismatch") && err.contains(hex),
        "{err}"
    );
    e.assert_empty();
    assert_eq!(
        fs::read_dir(e.store.root().join("content/ingest"))
            .unwrap()
            .count(),
        0,
        "a corrupt partial is not kept"
    );
}

#[test]
fn diff_id_mismatch_is_rejected() {
    use barge_testutil::oci_image::{
        put_manifest, sha256_digest, upload_blob, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST,
    };
    let reg = Registry::start();
    let (_, blob) = Layer::busybox(Comp::Gzip).blob();
    let layer = upload_blob(&reg, "diff", &blob);
    let wrong = sha256_digest(b"not the tar");
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [wrong]}
    }))
    .unwrap();
    let config_digest = upload_blob(&reg, "diff", &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": blob.len()}]
    }))
    .unwrap();
    put_manifest(&reg, "diff", "1", OCI_MANIFEST, &manifest);
    let e = env();
    let err = e
        .pull(&format!("{}/diff:1", reg.addr))
        .unwrap_err()
        .to_string();
    assert!(err.contains("diffID") && err.contains(&wrong), "{err}");
    e.assert_empty();
}

#[test]
fn cut_downloads_resume_with_range() {
    use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
    let reg = Registry::start();
    let data = barge_testutil::noise(3 << 20, 7);
    let mut layer = Layer::busybox(Comp::None);
    layer.entries.push(Entry::file("big", data.clone(), 0o644));
    let built = push_image(&reg, "cut", "1", &Image::new(vec![layer]));
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            cut_after: Some(1_000_000),
            // The config blob GET uses up one (it is shorter than the cut).
            cut_times: 3,
            ..Default::default()
        },
    );
    let e = env();
    let progress = std::sync::Arc::new(Collect::default());
    let rec = e
        .pull_with(
            &format!("{}/cut:1", proxy.addr),
            PullOptions::default(),
            progress.clone(),
        )
        .unwrap();
    e.with_rootfs(&rec.name, |root| {
        assert!(
            fs::read(root.join("big")).unwrap() == data,
            "content intact"
        )
    });
    let layer_path = format!("/blobs/{}", built.layer_digests[0]);
    let ranges: Vec<Option<String>> = proxy
        .blob_requests()
        .into_iter()
        .filter(|(p, _)| p.ends_with(&layer_path))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(ranges[1].as_deref(), Some("bytes=1000000-"), "{ranges:?}");
    assert_eq!(ranges[2].as_deref(), Some("bytes=2000000-"), "{ranges:?}");
    let events = progress.events();
    assert!(events.iter().any(|ev| matches!(
        ev,
        Event::Layer {
            state: LayerState::Retrying { .. },
            ..
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        Event::Layer {
            state: LayerState::Resuming { from: 2_000_000 },
            ..
        }
    )));
}
