//! Build OCI (or Docker v2 schema 2) images from in-memory layer descriptions, write them into
//! an OCI image layout directory, and push them to a [`Registry`] with skopeo.
//!
//! Everything is deterministic: fixed mtimes, uid/gid 0, fixed `created` dates, gzip without
//! a timestamp, so the same [`Image`] always gives the same digests.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::registry::{skopeo_copy_with, Registry};

/// mtime of every entry (2020-09-13T12:26:40Z).
pub const MTIME: u64 = 1_600_000_000;
/// `created` in configs and history.
pub const CREATED: &str = "2020-09-13T12:26:40Z";
/// The annotation naming a tag in an OCI layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An `Accept` header value covering every manifest type above.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

impl Comp {
    /// Compress `tar` (gzip: level 6, no mtime/name in the header; zstd: level 3).
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Comp::None => tar.to_vec(),
            Comp::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(tar).expect("gzip layer");
                e.finish().expect("gzip layer")
            }
            Comp::Zstd => zstd::encode_all(tar, 3).expect("zstd layer"),
        }
    }

    /// The layer media type (Docker has no zstd type: the OCI one is used there too).
    pub fn media_type(self, docker: bool) -> &'static str {
        match (self, docker) {
            (Comp::None, false) => OCI_LAYER,
            (Comp::Gzip, false) => OCI_LAYER_GZIP,
            (Comp::None, true) => DOCKER_LAYER,
            (Comp::Gzip, true) => DOCKER_LAYER_GZIP,
            (Comp::Zstd, _) => OCI_LAYER_ZSTD,
        }
    }
}

/// One tar entry. Paths are relative (`etc/hello`), uid/gid 0, mtime [`MTIME`].
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Raw carries a whole 512-byte header; fine in tests.
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    /// Written verbatim (`Builder::append(&header, data)`): for hostile entries (`../x`,
    /// absolute names, odd types, devices). The caller sets the name bytes, size and checksum
    /// (`header.set_cksum()`) itself.
    Raw {
        header: tar::Header,
        data: Vec<u8>,
    },
}

impl Entry {
    pub fn file(path: &str, data: impl AsRef<[u8]>, mode: u32) -> Entry {
        Entry::File {
            path: path.to_string(),
            data: data.as_ref().to_vec(),
            mode,
        }
    }

    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::Dir {
            path: path.to_string(),
            mode,
        }
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::Hardlink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    /// The whiteout deleting `path` (`dir/name` -> empty file `dir/.wh.name`, 0644).
    pub fn whiteout(path: &str) -> Entry {
        let p = path.trim_end_matches('/');
        let wh = match p.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{p}"),
        };
        Entry::file(&wh, b"", 0o644)
    }

    /// The opaque-directory marker for `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(dir: &str) -> Entry {
        let d = dir.trim_end_matches('/');
        Entry::file(&format!("{d}/.wh..wh..opq"), b"", 0o644)
    }

    /// A [`Entry::Raw`] regular file whose name field is exactly `name` (e.g. `../../evil` or
    /// `/etc/x`), bypassing the tar crate's path checks. `name` must fit in 100 bytes.
    pub fn raw_file(name: &[u8], data: &[u8], mode: u32) -> Entry {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        set_raw_name(&mut h, name);
        Entry::Raw {
            header: h,
            data: data.to_vec(),
        }
    }

    /// A [`Entry::Raw`] symlink or hardlink (`ty`) with verbatim name and link-name bytes.
    pub fn raw_link(ty: tar::EntryType, name: &[u8], target: &[u8]) -> Entry {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_size(0);
        h.set_mode(0o777);
        {
            let old = h.as_old_mut();
            assert!(
                target.len() <= old.linkname.len(),
                "raw link target too long"
            );
            old.linkname = [0; 100];
            old.linkname[..target.len()].copy_from_slice(target);
        }
        set_raw_name(&mut h, name);
        Entry::Raw {
            header: h,
            data: Vec::new(),
        }
    }
}

/// Set the name bytes of `h` verbatim, fix uid/gid/mtime and the checksum.
fn set_raw_name(h: &mut tar::Header, name: &[u8]) {
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    let old = h.as_old_mut();
    assert!(name.len() <= old.name.len(), "raw name too long");
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name);
    h.set_cksum();
}

/// One layer: entries in order, and how its blob is compressed.
#[derive(Debug, Clone)]
pub struct Layer {
    pub entries: Vec<Entry>,
    pub comp: Comp,
}

/// The busybox applets [`Layer::busybox`] links.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "stat", "test",
];

impl Layer {
    pub fn new(comp: Comp, entries: Vec<Entry>) -> Layer {
        Layer { entries, comp }
    }

    /// Debian's static busybox at `bin/busybox` with `bin/{sh,ls,...}` -> `busybox`, and the
    /// directories `etc`, `tmp` (1777), `proc`, `sys`, `dev`.
    pub fn busybox(comp: Comp) -> Layer {
        let bin = fs::read(crate::BUSYBOX)
            .unwrap_or_else(|e| panic!("{}: {e} (apt-get install busybox-static)", crate::BUSYBOX));
        let mut entries = vec![
            Entry::dir("bin", 0o755),
            Entry::file("bin/busybox", bin, 0o755),
        ];
        for a in BUSYBOX_APPLETS {
            entries.push(Entry::symlink(&format!("bin/{a}"), "busybox"));
        }
        entries.push(Entry::dir("etc", 0o755));
        entries.push(Entry::dir("tmp", 0o1777));
        for d in ["proc", "sys", "dev"] {
            entries.push(Entry::dir(d, 0o755));
        }
        Layer { entries, comp }
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let res = match e {
                Entry::Dir { path, mode } => {
                    let mut h = header(tar::EntryType::Directory, *mode, 0);
                    let p = format!("{}/", path.trim_end_matches('/'));
                    b.append_data(&mut h, p, std::io::empty())
                }
                Entry::File { path, data, mode } => {
                    let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice())
                }
                Entry::Symlink { path, target } => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    b.append_link(&mut h, path, target)
                }
                Entry::Hardlink { path, target } => {
                    let mut h = header(tar::EntryType::Link, 0o644, 0);
                    b.append_link(&mut h, path, target)
                }
                Entry::Raw { header, data } => b.append(header, data.as_slice()),
            };
            res.unwrap_or_else(|err| panic!("tar entry {e:?}: {err}"));
        }
        b.into_inner().expect("finish layer tar")
    }

    /// (uncompressed tar, compressed blob).
    pub fn blob(&self) -> (Vec<u8>, Vec<u8>) {
        let tar = self.tar();
        let blob = self.comp.compress(&tar);
        (tar, blob)
    }
}

fn header(ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

/// An image to build. [`Image::new`] / `Default` give linux/amd64, `Cmd ["sh"]`, a PATH env
/// and OCI media types.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub arch: String,
    pub os: String,
    pub variant: Option<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// Docker v2 schema 2 manifest, config and (gzip/uncompressed) layer media types.
    pub docker_media_types: bool,
    /// Extra keys merged into the config's `config` object (`Entrypoint`, `WorkingDir`,
    /// `User`, `Labels`, `ExposedPorts`, `Volumes`, `StopSignal`, ...). `Null` = none.
    pub extra_config: Value,
}

impl Default for Image {
    fn default() -> Self {
        Image {
            layers: Vec::new(),
            arch: "amd64".into(),
            os: "linux".into(),
            variant: None,
            cmd: vec!["sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            docker_media_types: false,
            extra_config: Value::Null,
        }
    }
}

impl Image {
    pub fn new(layers: Vec<Layer>) -> Image {
        Image {
            layers,
            ..Image::default()
        }
    }

    /// One gzip busybox layer.
    pub fn busybox() -> Image {
        Image::new(vec![Layer::busybox(Comp::Gzip)])
    }

    /// Same image for another platform (`variant` e.g. `Some("v7")`).
    pub fn platform(mut self, arch: &str, variant: Option<&str>) -> Image {
        self.arch = arch.to_string();
        self.variant = variant.map(str::to_string);
        self
    }

    fn manifest_media_type(&self) -> &'static str {
        if self.docker_media_types {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        }
    }

    fn platform_json(&self) -> Value {
        let mut p = json!({"architecture": self.arch, "os": self.os});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

/// What [`write_image`] wrote.
#[derive(Debug, Clone)]
pub struct Built {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_digest: String,
    /// Compressed blob digests, in layer order.
    pub layer_digests: Vec<String>,
    /// sha256 of the uncompressed tars, in layer order.
    pub diff_ids: Vec<String>,
    /// The manifest bytes exactly as written (and pushed).
    pub manifest: Vec<u8>,
    /// The config bytes.
    pub config: Vec<u8>,
}

fn ensure_layout(layout: &Path) {
    fs::create_dir_all(layout.join("blobs/sha256")).expect("create OCI layout");
    let marker = layout.join("oci-layout");
    if !marker.exists() {
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    }
}

/// Store `data` as a blob of the layout; returns its digest.
fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, data).expect("write blob");
        fs::rename(&tmp, &path).expect("rename blob");
    }
    digest
}

/// Write layers, config and manifest blobs of `image`; nothing in index.json.
fn write_manifest(layout: &Path, image: &Image) -> Built {
    ensure_layout(layout);
    let docker = image.docker_media_types;
    let mut layer_descs = Vec::new();
    let mut layer_digests = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &image.layers {
        let (tar, blob) = l.blob();
        let digest = put_blob(layout, &blob);
        diff_ids.push(sha256_digest(&tar));
        layer_descs.push(json!({
            "mediaType": l.comp.media_type(docker),
            "digest": digest,
            "size": blob.len(),
        }));
        layer_digests.push(digest);
    }
    let mut cfg = json!({});
    if !image.cmd.is_empty() {
        cfg["Cmd"] = json!(image.cmd);
    }
    if !image.env.is_empty() {
        cfg["Env"] = json!(image.env);
    }
    if let Value::Object(extra) = &image.extra_config {
        for (k, v) in extra {
            cfg[k] = v.clone();
        }
    }
    let history: Vec<Value> = (0..image.layers.len())
        .map(|i| json!({"created": CREATED, "created_by": format!("barge-testutil layer {i}")}))
        .collect();
    let mut config = json!({
        "architecture": image.arch,
        "os": image.os,
        "created": CREATED,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    if let Some(v) = &image.variant {
        config["variant"] = json!(v);
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = put_blob(layout, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": image.manifest_media_type(),
        "config": {
            "mediaType": if docker { DOCKER_CONFIG } else { OCI_CONFIG },
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layer_descs,
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = put_blob(layout, &manifest);
    Built {
        manifest_digest,
        manifest_media_type: image.manifest_media_type().to_string(),
        config_digest,
        layer_digests,
        diff_ids,
        manifest,
        config,
    }
}

/// Point `tag` in the layout's index.json at `desc` (replacing an entry with that tag).
fn tag_in_index(layout: &Path, tag: &str, mut desc: Value) {
    let path = layout.join("index.json");
    let mut index = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}));
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("index.json manifests");
    manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    desc["annotations"] = json!({ REF_NAME: tag });
    manifests.push(desc);
    let tmp = layout.join("index.json.tmp");
    fs::write(&tmp, serde_json::to_vec(&index).expect("index json")).expect("write index.json");
    fs::rename(&tmp, &path).expect("rename index.json");
}

/// Write `image` into the OCI layout at `layout` (created if missing: oci-layout, index.json,
/// blobs/sha256/...) and tag it `tag` in index.json (`org.opencontainers.image.ref.name`,
/// replacing an existing entry with that tag).
pub fn write_image(layout: &Path, tag: &str, image: &Image) -> Built {
    let built = write_manifest(layout, image);
    tag_in_index(
        layout,
        tag,
        json!({
            "mediaType": built.manifest_media_type,
            "digest": built.manifest_digest,
            "size": built.manifest.len(),
        }),
    );
    built
}

/// Several platform images under one OCI image index (a Docker manifest list when the first
/// image has `docker_media_types`) tagged `tag`; each child descriptor carries its platform
/// {architecture, os, variant}. Returns (index digest, the children in order).
pub fn write_index(layout: &Path, tag: &str, images: &[Image]) -> (String, Vec<Built>) {
    let (digest, index, built) = write_index_blob(layout, images);
    let media_type = index_media_type(images);
    tag_in_index(
        layout,
        tag,
        json!({"mediaType": media_type, "digest": digest, "size": index.len()}),
    );
    (digest, built)
}

fn index_media_type(images: &[Image]) -> &'static str {
    if images.first().is_some_and(|i| i.docker_media_types) {
        DOCKER_LIST
    } else {
        OCI_INDEX
    }
}

/// Write children and the index blob; returns (digest, index bytes, children).
fn write_index_blob(layout: &Path, images: &[Image]) -> (String, Vec<u8>, Vec<Built>) {
    let mut children = Vec::new();
    let mut descs = Vec::new();
    for image in images {
        let b = write_manifest(layout, image);
        descs.push(json!({
            "mediaType": b.manifest_media_type,
            "digest": b.manifest_digest,
            "size": b.manifest.len(),
            "platform": image.platform_json(),
        }));
        children.push(b);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": index_media_type(images),
        "manifests": descs,
    });
    let index = serde_json::to_vec(&index).expect("index json");
    let digest = put_blob(layout, &index);
    (digest, index, children)
}

/// The index bytes [`write_index`] makes for `images` (for byte comparisons in tests).
pub fn index_bytes(images: &[Image]) -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_index_blob(tmp.path(), images).1
}

/// Write `image` into a temp layout and `skopeo copy` it to `reg` as `repo:tag` (with the
/// registry's credentials, if any). Panics unless the registry ends up with exactly
/// `manifest_digest` (checked with skopeo's `--digestfile`).
pub fn push_image(reg: &Registry, repo: &str, tag: &str, image: &Image) -> Built {
    let tmp = tempfile::Builder::new()
        .prefix("barge-oci-")
        .tempdir()
        .expect("layout tempdir");
    let built = write_image(tmp.path(), tag, image);
    push_layout(reg, tmp.path(), repo, tag, &built.manifest_digest);
    built
}

/// Like [`push_image`] for [`write_index`]: pushes the index and every child (`--all`).
pub fn push_index(reg: &Registry, repo: &str, tag: &str, images: &[Image]) -> (String, Vec<Built>) {
    let tmp = tempfile::Builder::new()
        .prefix("barge-oci-")
        .tempdir()
        .expect("layout tempdir");
    let (digest, built) = write_index(tmp.path(), tag, images);
    push_layout(reg, tmp.path(), repo, tag, &digest);
    (digest, built)
}

/// `skopeo copy --preserve-digests SRC docker://ADDR/REPO:TAG` with the registry's
/// credentials, checking that the pushed digest is `want_digest`. SRC is `oci:LAYOUT:TAG`,
/// except for Docker manifests and lists, which skopeo 1.9 (containers/image 5.23) does not
/// read from OCI layouts ("no descriptor found"): those go through a `dir:` copy of the same
/// blobs ([`layout_to_dir`]). Docker manifests with non-Docker layer types (zstd) skopeo
/// cannot read at all: those are pushed with [`push_layout_http`] (plain-HTTP registries only).
pub fn push_layout(reg: &Registry, layout: &Path, repo: &str, tag: &str, want_digest: &str) {
    let scratch = tempfile::Builder::new()
        .prefix("barge-push-")
        .tempdir()
        .expect("push tempdir");
    let digest_file = scratch.path().join("pushed-digest");
    let top = read_blob(layout, want_digest);
    let top_type = serde_json::from_slice::<Value>(&top).expect("top manifest json")["mediaType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dir_copy = scratch.path().join("dir-transport");
    if docker_with_foreign_layers(layout, &top) {
        // skopeo refuses to even read these ("unsupported docker v2s2 media type").
        push_layout_http(reg, layout, repo, tag, want_digest);
        return;
    }
    let src = if top_type == DOCKER_MANIFEST || top_type == DOCKER_LIST {
        layout_to_dir(layout, want_digest, &dir_copy);
        format!("dir:{}", dir_copy.display())
    } else {
        format!("oci:{}:{tag}", layout.display())
    };
    let dst = format!("docker://{}/{repo}:{tag}", reg.addr);
    let digest_arg = digest_file.display().to_string();
    let creds = reg.creds_arg();
    let mut args = vec!["--preserve-digests", "--digestfile", &digest_arg];
    if let Some(c) = &creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo_copy_with(&args);
    let got = fs::read_to_string(&digest_file).expect("skopeo --digestfile");
    assert_eq!(
        got.trim(),
        want_digest,
        "skopeo changed the manifest while pushing {dst}"
    );
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let p = blob_path(layout, digest);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Lay out the manifest (or list/index) `digest` of the OCI layout `layout`, its children and
/// their blobs as a skopeo `dir:` directory at `dir` (`manifest.json`,
/// `<hex>.manifest.json` per child, `<hex>` per blob, `version`).
pub fn layout_to_dir(layout: &Path, digest: &str, dir: &Path) {
    fs::create_dir_all(dir).expect("create dir transport dir");
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").expect("dir version");
    let top = read_blob(layout, digest);
    fs::write(dir.join("manifest.json"), &top).expect("dir manifest.json");
    let v: Value = serde_json::from_slice(&top).expect("manifest json");
    let mut manifests = vec![v.clone()];
    if let Some(children) = v["manifests"].as_array() {
        manifests.clear();
        for c in children {
            let d = c["digest"].as_str().expect("child digest");
            let bytes = read_blob(layout, d);
            let name = format!("{}.manifest.json", d.trim_start_matches("sha256:"));
            fs::write(dir.join(name), &bytes).expect("dir child manifest");
            manifests.push(serde_json::from_slice(&bytes).expect("child manifest json"));
        }
    }
    for m in &manifests {
        let layers = m["layers"].as_array().cloned().unwrap_or_default();
        for desc in std::iter::once(&m["config"]).chain(layers.iter()) {
            let d = desc["digest"].as_str().expect("blob digest");
            let dest = dir.join(d.trim_start_matches("sha256:"));
            if !dest.exists() {
                let src = blob_path(layout, d);
                fs::hard_link(&src, &dest)
                    .or_else(|_| fs::copy(&src, &dest).map(|_| ()))
                    .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
            }
        }
    }
}

/// The manifests below `top`: itself, or the children of an index/list.
fn child_manifests(layout: &Path, top: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let v: Value = serde_json::from_slice(top).expect("manifest json");
    match v["manifests"].as_array() {
        Some(children) => children
            .iter()
            .map(|c| {
                let d = c["digest"].as_str().expect("child digest").to_string();
                let bytes = read_blob(layout, &d);
                (Some(d), bytes)
            })
            .collect(),
        None => vec![(None, top.to_vec())],
    }
}

fn docker_with_foreign_layers(layout: &Path, top: &[u8]) -> bool {
    child_manifests(layout, top).iter().any(|(_, m)| {
        let v: Value = serde_json::from_slice(m).expect("manifest json");
        v["mediaType"] == DOCKER_MANIFEST
            && v["layers"].as_array().is_some_and(|ls| {
                ls.iter().any(|l| {
                    !l["mediaType"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("application/vnd.docker.")
                })
            })
    })
}

/// Push the manifest (or index/list) `digest` of `layout` with its children and blobs as
/// `repo:tag` over plain HTTP ([`upload_blob`], [`put_manifest`]), byte for byte. For
/// content skopeo won't carry; plain-HTTP registries only (basic auth is fine).
pub fn push_layout_http(reg: &Registry, layout: &Path, repo: &str, tag: &str, digest: &str) {
    let top = read_blob(layout, digest);
    for (child, bytes) in child_manifests(layout, &top) {
        let v: Value = serde_json::from_slice(&bytes).expect("manifest json");
        let layers = v["layers"].as_array().cloned().unwrap_or_default();
        for desc in std::iter::once(&v["config"]).chain(layers.iter()) {
            let d = desc["digest"].as_str().expect("blob digest");
            upload_blob(reg, repo, &read_blob(layout, d));
        }
        if let Some(child) = child {
            let mt = v["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
            put_manifest(reg, repo, &child, mt, &bytes);
        }
    }
    let v: Value = serde_json::from_slice(&top).expect("manifest json");
    let mt = v["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
    let got = put_manifest(reg, repo, tag, mt, &top);
    assert_eq!(got, digest, "registry computed another digest");
}

/// Upload `data` as a blob of `repo` (monolithic `POST` + `PUT ?digest=`) to a plain-HTTP
/// registry, with its credentials if it has any; returns the digest. No-op if it exists.
pub fn upload_blob(reg: &Registry, repo: &str, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    if reg
        .request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], &[])
        .status
        == 200
    {
        return digest;
    }
    let r = reg.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
    assert_eq!(r.status, 202, "start upload: {}", r.text());
    let loc = r.header("Location").expect("upload Location").to_string();
    // Absolute (http://ADDR/v2/...) or relative: keep the path and query.
    let path = match loc.find("://") {
        Some(i) => loc[i + 3..]
            .find('/')
            .map(|j| loc[i + 3 + j..].to_string())
            .unwrap_or_default(),
        None => loc,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = reg.request(
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(r.status, 201, "finish upload: {}", r.text());
    digest
}

/// `PUT /v2/REPO/manifests/REFERENCE` with `bytes` as-is (plain-HTTP registries); returns the
/// registry's `Docker-Content-Digest`.
pub fn put_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let r = reg.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    assert_eq!(
        r.status,
        201,
        "put manifest {repo}:{reference}: {}",
        r.text()
    );
    r.header("Docker-Content-Digest")
        .map(str::to_string)
        .unwrap_or_else(|| sha256_digest(bytes))
}
