//! docker load / save / import: archives made by skopeo (and by hand, for hostile ones) loaded
//! into a fresh store and checked file by file; saved archives read back by skopeo and by us.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use barge_image::archive::{self, ArchiveFormat, ImportOptions};
use barge_image::platform::Platform;
use barge_image::progress::{Event, LayerState, Quiet};
use barge_image::reference::split_stored;
use barge_image::{Digest, Error};
use barge_testutil::oci_image::{
    sha256_digest, write_image, write_index, Built, Comp, Entry, Image, Layer,
};
use barge_testutil::registry::skopeo_copy;
use common::{env, Collect, Env};
use serde_json::{json, Value};

fn busybox_bytes() -> Vec<u8> {
    fs::read("/bin/busybox").unwrap()
}

/// `image` written into an OCI layout under `dir` as `tag`.
fn layout(dir: &Path, tag: &str, image: &Image) -> (PathBuf, Built) {
    let l = dir.join("layout");
    let built = write_image(&l, tag, image);
    (l, built)
}

/// `skopeo copy oci:LAYOUT:TAG DEST`.
fn skopeo_to(layout: &Path, tag: &str, dest: &str) {
    skopeo_copy(&format!("oci:{}:{tag}", layout.display()), dest);
}

fn skopeo_inspect(src: &str) -> Value {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", src])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {src}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn load_file(e: &Env, path: &Path) -> barge_image::Result<Vec<barge_image::meta::ImageRecord>> {
    archive::load(&e.store, &e.config, fs::File::open(path).unwrap(), &Quiet)
}

/// The directory a committed layer was unpacked into.
fn layer_dir(e: &Env, chain: &Digest) -> PathBuf {
    let s = e.store.db.snapshot(chain.as_str()).unwrap().unwrap();
    e.store.snapshots.fs_dir(s.id)
}

fn layer_states(p: &Collect) -> Vec<LayerState> {
    p.events()
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Layer { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// busybox plus a few files, then a layer deleting and changing some of them.
fn two_layer_image() -> Image {
    let mut base = Layer::busybox(Comp::Gzip);
    base.entries.extend([
        Entry::dir("data", 0o755),
        Entry::file("etc/hello", "v1", 0o644),
        Entry::file("etc/gone", "bye", 0o644),
        Entry::file("data/a", "a", 0o600),
    ]);
    let top = Layer::new(
        Comp::None,
        vec![
            Entry::whiteout("etc/gone"),
            Entry::file("etc/hello", "v2", 0o644),
            Entry::file("data/b", "b", 0o644),
        ],
    );
    Image::new(vec![base, top])
}

#[test]
fn load_skopeo_docker_archive_with_whiteout() {
    let e = env();
    let (l, built) = layout(e.dir.path(), "v1", &two_layer_image());
    let file = e.dir.path().join("two.tar");
    skopeo_to(
        &l,
        "v1",
        &format!("docker-archive:{}:example.com/test/two:v1", file.display()),
    );

    let progress = Collect::default();
    let recs = archive::load(
        &e.store,
        &e.config,
        fs::File::open(&file).unwrap(),
        &progress,
    )
    .unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.name, "example.com/test/two:v1");
    assert_eq!(rec.target, rec.manifest);
    assert_eq!(
        rec.config.as_str(),
        built.config_digest,
        "the config blob is kept byte for byte"
    );
    assert_eq!(e.store.db.images().unwrap(), recs);
    assert_eq!(
        layer_states(&progress),
        [
            LayerState::Extracting,
            LayerState::Complete,
            LayerState::Extracting,
            LayerState::Complete
        ]
    );

    let img = e.store.image(rec).unwrap();
    assert_eq!(
        img.diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        built.diff_ids
    );
    // docker-archive layers are plain tars: the manifest made for them says so.
    for desc in img.manifest.layers() {
        assert_eq!(
            desc.media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
    let lower = layer_dir(&e, &img.chain[0]);
    assert_eq!(
        fs::read(lower.join("bin/busybox")).unwrap(),
        busybox_bytes()
    );
    assert_eq!(
        fs::read_link(lower.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(fs::read_to_string(lower.join("etc/hello")).unwrap(), "v1");
    assert_eq!(fs::read_to_string(lower.join("etc/gone")).unwrap(), "bye");
    assert_eq!(
        fs::metadata(lower.join("data/a")).unwrap().mode() & 0o777,
        0o600
    );
    let upper = layer_dir(&e, &img.chain[1]);
    let wh = fs::symlink_metadata(upper.join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert_eq!(fs::read_to_string(upper.join("etc/hello")).unwrap(), "v2");
    assert!(
        !upper.join("bin").exists(),
        "the upper layer only has its own files"
    );

    e.with_rootfs(&rec.name, |root| {
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes());
        assert_eq!(fs::read_to_string(root.join("etc/hello")).unwrap(), "v2");
        assert!(!root.join("etc/gone").exists(), "whited out");
        assert_eq!(fs::read_to_string(root.join("data/a")).unwrap(), "a");
        assert_eq!(fs::read_to_string(root.join("data/b")).unwrap(), "b");
    });

    // Loaded again: the layers are there, the name stays, nothing new is left behind.
    let blobs = e.store.content.list().unwrap();
    let progress = Collect::default();
    let again = archive::load(
        &e.store,
        &e.config,
        fs::File::open(&file).unwrap(),
        &progress,
    )
    .unwrap();
    assert_eq!(again[0].manifest, rec.manifest);
    assert_eq!(
        layer_states(&progress),
        [LayerState::Exists, LayerState::Exists]
    );
    assert_eq!(e.store.content.list().unwrap(), blobs);
}

#[test]
fn load_skopeo_oci_archive_zstd_and_untagged() {
    let e = env();
    let image = Image::new(vec![
        Layer::busybox(Comp::Zstd),
        Layer::new(Comp::Zstd, vec![Entry::file("etc/z", "zstd", 0o644)]),
    ]);
    let (l, built) = layout(e.dir.path(), "v1", &image);
    let file = e.dir.path().join("z.tar");
    skopeo_to(
        &l,
        "v1",
        &format!("oci-archive:{}:example.com/z:v1", file.display()),
    );
    let recs = load_file(&e, &file).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["example.com/z:v1"]
    );
    let rec = &recs[0];
    assert_eq!(
        rec.manifest.as_str(),
        built.manifest_digest,
        "OCI manifests are kept as they are"
    );
    assert_eq!(rec.config.as_str(), built.config_digest);
    let img = e.store.image(rec).unwrap();
    assert_eq!(
        img.manifest.layers()[0].media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        fs::read(layer_dir(&e, &img.chain[0]).join("bin/busybox")).unwrap(),
        busybox_bytes()
    );
    e.with_rootfs(&rec.name, |root| {
        assert_eq!(fs::read_to_string(root.join("etc/z")).unwrap(), "zstd");
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes());
    });

    // Only a tag as the ref name, no manifest.json: recorded untagged.
    let bare = e.dir.path().join("bare.tar");
    skopeo_to(&l, "v1", &format!("oci-archive:{}:latest", bare.display()));
    let recs = load_file(&e, &bare).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].name, format!("<none>@{}", built.manifest_digest));
    assert_eq!(
        split_stored(&recs[0].name),
        ("<none>", "<none>", Some(built.manifest_digest.as_str()))
    );
    assert_eq!(
        e.store.resolve(rec.config.short()).unwrap().config,
        rec.config
    );
    // Named by a later load: the placeholder goes.
    let named = e.dir.path().join("named.tar");
    skopeo_to(
        &l,
        "v1",
        &format!("oci-archive:{}:example.com/z2:v1", named.display()),
    );
    load_file(&e, &named).unwrap();
    let mut names: Vec<String> = e
        .store
        .db
        .images()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    names.sort();
    assert_eq!(names, ["example.com/z2:v1", "example.com/z:v1"]);
}

#[test]
fn load_multi_arch_oci_archive_picks_the_host() {
    let e = env();
    let host = Platform::host();
    let other = if host.architecture == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let mine = Image::new(vec![Layer::new(
        Comp::Gzip,
        vec![Entry::file("arch", "mine", 0o644)],
    )])
    .platform(&host.architecture, host.variant.as_deref());
    let theirs = Image::new(vec![Layer::new(
        Comp::Gzip,
        vec![Entry::file("arch", "theirs", 0o644)],
    )])
    .platform(other, None);
    let l = e.dir.path().join("layout");
    let (index, children) = write_index(&l, "multi", &[theirs, mine]);
    let file = e.dir.path().join("multi.tar");
    skopeo_to(
        &l,
        "multi",
        &format!("oci-archive:{}:example.com/multi:1", file.display()),
    );
    let recs = load_file(&e, &file).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].target.as_str(), index);
    assert_eq!(recs[0].manifest.as_str(), children[1].manifest_digest);
    e.with_rootfs(&recs[0].name, |root| {
        assert_eq!(fs::read_to_string(root.join("arch")).unwrap(), "mine")
    });
    // The other platform's layer and config are not kept.
    assert!(!e
        .store
        .content
        .exists(&Digest::parse(&children[0].config_digest).unwrap()));
    assert!(!e
        .store
        .content
        .exists(&Digest::parse(&children[0].layer_digests[0]).unwrap()));
}

#[test]
fn save_is_read_by_skopeo_and_by_load() {
    let e = env();
    let (l, _) = layout(e.dir.path(), "v1", &two_layer_image());
    let src = e.dir.path().join("src.tar");
    skopeo_to(
        &l,
        "v1",
        &format!("docker-archive:{}:example.com/test/two:v1", src.display()),
    );
    let rec = load_file(&e, &src).unwrap().remove(0);
    e.store
        .tag("example.com/test/two:v1", "busybox:mine")
        .unwrap();
    let img = e.store.image(&rec).unwrap();
    let layers: Vec<String> = img
        .manifest
        .layers()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();

    let saved = e.dir.path().join("saved.tar");
    let names = vec![
        "example.com/test/two:v1".to_string(),
        "busybox:mine".to_string(),
    ];
    archive::save(
        &e.store,
        &names,
        ArchiveFormat::DockerArchive,
        fs::File::create(&saved).unwrap(),
    )
    .unwrap();
    // Deterministic: the same images give the same bytes.
    let mut again = Vec::new();
    archive::save(&e.store, &names, ArchiveFormat::DockerArchive, &mut again).unwrap();
    assert_eq!(fs::read(&saved).unwrap(), again);

    // What is in it: both layouts over the same blobs.
    let mut entries = Vec::new();
    let mut manifest_json = Value::Null;
    let mut index_json = Value::Null;
    for entry in tar::Archive::new(fs::File::open(&saved).unwrap())
        .entries()
        .unwrap()
    {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        assert_eq!(
            (
                entry.header().mtime().unwrap(),
                entry.header().uid().unwrap()
            ),
            (0, 0),
            "{name}"
        );
        match name.as_str() {
            "manifest.json" => manifest_json = serde_json::from_reader(&mut entry).unwrap(),
            "index.json" => index_json = serde_json::from_reader(&mut entry).unwrap(),
            _ => {}
        }
        entries.push(name);
    }
    assert!(entries.contains(&"oci-layout".to_string()), "{entries:?}");
    assert_eq!(
        entries
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13)
            .count(),
        4,
        "2 layers, config, manifest, once each: {entries:?}"
    );
    assert_eq!(
        manifest_json,
        json!([{
            "Config": format!("blobs/sha256/{}", rec.config.hex()),
            "RepoTags": ["example.com/test/two:v1", "busybox:mine"],
            "Layers": layers.iter().map(|d| format!("blobs/sha256/{}", &d[7..])).collect::<Vec<_>>(),
        }])
    );
    let annotations: Vec<&Value> = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["annotations"])
        .collect();
    assert_eq!(
        annotations,
        [
            &json!({"io.containerd.image.name": "example.com/test/two:v1", "org.opencontainers.image.ref.name": "v1"}),
            &json!({"io.containerd.image.name": "docker.io/library/busybox:mine", "org.opencontainers.image.ref.name": "mine"}),
        ]
    );

    // skopeo reads it both ways and sees the same layers (they are plain tars, so their
    // digests are their diffIDs, which is what the docker-archive reader reports).
    let d = skopeo_inspect(&format!("docker-archive:{}:busybox:mine", saved.display()));
    let o = skopeo_inspect(&format!("oci-archive:{}:v1", saved.display()));
    assert_eq!(d["Layers"], json!(layers));
    assert_eq!(o["Layers"], json!(layers));
    assert_eq!(o["Digest"], json!(rec.manifest));

    // Our own load of it, into a fresh store: the same manifest and config.
    let fresh = env();
    let recs = load_file(&fresh, &saved).unwrap();
    let got: Vec<(&str, &Digest, &Digest)> = recs
        .iter()
        .map(|r| (r.name.as_str(), &r.manifest, &r.config))
        .collect();
    assert_eq!(
        got,
        [
            ("docker.io/library/busybox:mine", &rec.manifest, &rec.config),
            ("example.com/test/two:v1", &rec.manifest, &rec.config),
        ]
    );
    fresh.with_rootfs("busybox:mine", |root| {
        assert_eq!(fs::read_to_string(root.join("etc/hello")).unwrap(), "v2");
        assert!(!root.join("etc/gone").exists());
    });

    // By ID: untagged. OCI archive: no manifest.json.
    let oci = e.dir.path().join("oci.tar");
    archive::save(
        &e.store,
        &[rec.config.short().to_string()],
        ArchiveFormat::OciArchive,
        fs::File::create(&oci).unwrap(),
    )
    .unwrap();
    let names: Vec<String> = tar::Archive::new(fs::File::open(&oci).unwrap())
        .entries()
        .unwrap()
        .map(|en| en.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(!names.contains(&"manifest.json".to_string()), "{names:?}");
    let o = skopeo_inspect(&format!("oci-archive:{}", oci.display()));
    assert_eq!(o["Layers"], json!(layers));
    let fresh = env();
    let recs = load_file(&fresh, &oci).unwrap();
    assert_eq!(recs[0].name, format!("<none>@{}", rec.manifest));

    let err = archive::save(
        &e.store,
        &["nosuch:1".to_string()],
        ArchiveFormat::DockerArchive,
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
}

#[test]
fn compressed_archives_load() {
    let e = env();
    let (l, built) = layout(e.dir.path(), "v1", &Image::busybox());
    let file = e.dir.path().join("bb.tar");
    skopeo_to(
        &l,
        "v1",
        &format!("docker-archive:{}:bb:v1", file.display()),
    );
    let plain = fs::read(&file).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    // From a reader that can't seek, as stdin.
    let recs = archive::load(&e.store, &e.config, &gz[..], &Quiet).unwrap();
    assert_eq!(recs[0].name, "docker.io/library/bb:v1");
    assert_eq!(recs[0].config.as_str(), built.config_digest);
    e.with_rootfs("bb:v1", |root| {
        assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), busybox_bytes())
    });

    let e = env();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let recs = archive::load(&e.store, &e.config, &zst[..], &Quiet).unwrap();
    assert_eq!(recs[0].name, "docker.io/library/bb:v1");
}

/// A tar of `files` (name, bytes), in order.
fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // The name bytes verbatim (the tar crate refuses `..` in names it sets).
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn corrupt_blob_is_refused_and_nothing_is_left() {
    let e = env();
    let (l, built) = layout(e.dir.path(), "v1", &Image::busybox());
    let blob = |d: &str| fs::read(l.join("blobs/sha256").join(&d[7..])).unwrap();
    let mut config = blob(&built.config_digest);
    config[1] ^= 0x20;
    let config_name = format!("blobs/sha256/{}", &built.config_digest[7..]);
    let tar = tar_of(&[
        ("oci-layout", fs::read(l.join("oci-layout")).unwrap()),
        (
            &format!("blobs/sha256/{}", &built.layer_digests[0][7..]),
            blob(&built.layer_digests[0]),
        ),
        (
            &format!("./blobs/sha256/{}", &built.manifest_digest[7..]),
            blob(&built.manifest_digest),
        ),
        (&config_name, config),
        ("index.json", fs::read(l.join("index.json")).unwrap()),
    ]);
    let err = archive::load(&e.store, &e.config, &tar[..], &Quiet).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&config_name), "{err}");
    e.assert_empty();
    assert_eq!(
        fs::read_dir(e.store.root().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );

    // A referenced blob missing from the archive is named.
    let tar = tar_of(&[
        (
            &format!("blobs/sha256/{}", &built.manifest_digest[7..]),
            blob(&built.manifest_digest),
        ),
        (&config_name, blob(&built.config_digest)),
        ("index.json", fs::read(l.join("index.json")).unwrap()),
    ]);
    let err = archive::load(&e.store, &e.config, &tar[..], &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&built.layer_digests[0][7..]) && err.contains("no such file"),
        "{err}"
    );
    e.assert_empty();

    // Neither layout: not an image archive.
    let err = archive::load(
        &e.store,
        &e.config,
        &tar_of(&[("hello", b"x".to_vec())])[..],
        &Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("index.json") && err.contains("manifest.json"),
        "{err}"
    );
    e.assert_empty();
}

#[test]
fn hostile_layer_in_docker_archive_fails_cleanly() {
    let e = env();
    let base = Layer::busybox(Comp::None).tar();
    let evil = Layer::new(
        Comp::None,
        vec![Entry::raw_file(b"../../../../evil", b"x", 0o644)],
    )
    .tar();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&base), sha256_digest(&evil)]},
    }))
    .unwrap();
    let manifest = json!([{"Config": "cfg.json", "RepoTags": ["evil:latest"], "Layers": ["a/layer.tar", "b/layer.tar"]}]);
    let tar = tar_of(&[
        ("a/layer.tar", base),
        ("b/layer.tar", evil),
        ("cfg.json", config),
        ("../../escape", b"archive entries are never paths".to_vec()),
        ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ]);
    let err = archive::load(&e.store, &e.config, &tar[..], &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"layer entry "../../../../evil": escapes"#),
        "{err}"
    );
    assert!(
        err.contains(r#""b/layer.tar" in the archive) of docker.io/library/evil:latest"#),
        "{err}"
    );
    e.assert_empty();
    let mut found = Vec::new();
    find(e.dir.path(), &mut found, 16);
    assert!(
        found
            .iter()
            .all(|p| !p.ends_with("evil") && !p.ends_with("escape")),
        "{found:?}"
    );
    assert!(!Path::new("/evil").exists());
}

/// Every path under `dir`, `depth` levels deep.
fn find(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for en in entries.flatten() {
        let p = en.path();
        out.push(p.clone());
        if depth > 0 && en.file_type().is_ok_and(|t| t.is_dir()) {
            find(&p, out, depth - 1);
        }
    }
}

#[test]
fn import_rootfs_tarball() {
    let e = env();
    let (tar, gz) = Layer::busybox(Comp::Gzip).blob();
    let opts = ImportOptions {
        changes: vec![
            r#"CMD ["/bin/sh"]"#.into(),
            "ENV A=b".into(),
            "EXPOSE 8080".into(),
        ],
        message: Some("from a tarball".into()),
        platform: Platform::parse("linux/arm64").unwrap(),
    };
    let rec = archive::import(
        &e.store,
        &e.config,
        &gz[..],
        "example.com/imported:v1",
        &opts,
    )
    .unwrap();
    assert_eq!(rec.name, "example.com/imported:v1");
    assert_eq!(e.store.db.images().unwrap(), vec![rec.clone()]);
    let img = e.store.image(&rec).unwrap();
    assert_eq!(
        img.diff_ids,
        vec![Digest::parse(&sha256_digest(&tar)).unwrap()]
    );
    assert_eq!(
        img.manifest.layers()[0].media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config: Value =
        serde_json::from_slice(&e.store.content.read(&rec.config).unwrap()).unwrap();
    assert_eq!(config["config"]["Cmd"], json!(["/bin/sh"]));
    assert_eq!(config["config"]["Env"], json!(["A=b"]));
    assert_eq!(config["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(
        (&config["architecture"], &config["os"], &config["variant"]),
        (&json!("arm64"), &json!("linux"), &json!("v8"))
    );
    assert_eq!(config["history"][0]["comment"], "from a tarball");
    assert_eq!(config["history"][0]["created_by"], "barge import");
    assert!(config["created"].as_str().unwrap().ends_with('Z'));
    let dir = layer_dir(&e, &img.chain[0]);
    assert_eq!(fs::read(dir.join("bin/busybox")).unwrap(), busybox_bytes());
    assert_eq!(
        fs::read_link(dir.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );

    // Plain and zstd tarballs too; the same rootfs gives the same layer.
    let plain = archive::import(
        &e.store,
        &e.config,
        &tar[..],
        "plain",
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(e.store.image(&plain).unwrap().chain, img.chain);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    archive::import(
        &e.store,
        &e.config,
        &zst[..],
        "zst",
        &ImportOptions::default(),
    )
    .unwrap();

    // Refused changes and broken tarballs leave nothing.
    let e = env();
    let bad = ImportOptions {
        changes: vec!["VOLUME /data".into()],
        ..ImportOptions::default()
    };
    let err = archive::import(&e.store, &e.config, &gz[..], "x", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("VOLUME /data"), "{err}");
    let err = archive::import(
        &e.store,
        &e.config,
        &gz[..gz.len() / 2],
        "x",
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("rootfs tarball"), "{err}");
    let err = archive::import(
        &e.store,
        &e.config,
        &b"not a tar at all, no"[..],
        "x",
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("layer"), "{err}");
    e.assert_empty();
}

#[test]
fn import_of_an_empty_tarball_is_refused() {
    let e = env();
    // What `tar -cf x.tar -T /dev/null` writes (10 KiB of zeros), the bare end-of-archive
    // marker, the same gzip-compressed, and no bytes at all.
    let gz_marker = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &[0u8; 1024]).unwrap();
        enc.finish().unwrap()
    };
    for input in [vec![0u8; 10240], vec![0u8; 1024], gz_marker, Vec::new()] {
        let err = archive::import(
            &e.store,
            &e.config,
            &input[..],
            "empty:1",
            &ImportOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("rootfs tarball") && err.contains("empty"),
            "{} bytes: {err}",
            input.len()
        );
        e.assert_empty();
        assert_eq!(
            fs::read_dir(e.store.root().join("content/ingest"))
                .unwrap()
                .count(),
            0,
            "no partial left"
        );
    }
}
