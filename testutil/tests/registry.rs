//! The registry fixtures against the real thing: docker-registry, skopeo, the token proxy.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use barge_testutil::oci_image::*;
use barge_testutil::registry::{base64_encode, http_get, HttpResponse, Registry};
use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
use barge_testutil::{exec_bounded, ok, stderr};

fn small_layer(comp: Comp, name: &str) -> Layer {
    Layer::new(
        comp,
        vec![
            Entry::dir("etc", 0o755),
            Entry::file(
                &format!("etc/{name}"),
                format!("hello from {name}\n"),
                0o644,
            ),
            Entry::symlink("etc/link", name),
            Entry::hardlink("etc/hard", &format!("etc/{name}")),
        ],
    )
}

/// GET the manifest `reference` of `repo` and check it is byte-identical to `want`.
fn check_manifest(reg: &Registry, repo: &str, reference: &str, want: &[u8], digest: &str) {
    let r = reg.get(
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_ALL)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest));
    assert_eq!(sha256_digest(&r.body), digest);
    assert_eq!(r.body, want, "manifest bytes differ");
}

fn check_blob(reg: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    let r = reg.get(&format!("/v2/{repo}/blobs/{digest}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sha256_digest(&r.body), digest);
    r.body
}

fn check_image(reg: &Registry, repo: &str, tag: &str, b: &Built, media_type: &str) {
    check_manifest(reg, repo, tag, &b.manifest, &b.manifest_digest);
    let m: serde_json::Value = serde_json::from_slice(&b.manifest).unwrap();
    assert_eq!(m["mediaType"], media_type);
    assert_eq!(check_blob(reg, repo, &b.config_digest), b.config);
    for d in &b.layer_digests {
        check_blob(reg, repo, d);
    }
}

#[test]
fn gzip_two_layers_pushed_unchanged() {
    let reg = Registry::start();
    let img = Image::new(vec![
        Layer::busybox(Comp::Gzip),
        small_layer(Comp::Gzip, "hello"),
    ]);
    let b = push_image(&reg, "test/gzip", "v1", &img);
    assert_eq!(b.layer_digests.len(), 2);
    assert_eq!(b.diff_ids.len(), 2);
    check_image(&reg, "test/gzip", "v1", &b, OCI_MANIFEST);
    check_manifest(
        &reg,
        "test/gzip",
        &b.manifest_digest,
        &b.manifest,
        &b.manifest_digest,
    );
    // Layers are what they claim: gunzip gives the diff_id.
    let blob = check_blob(&reg, "test/gzip", &b.layer_digests[1]);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
    assert_eq!(sha256_digest(&tar), b.diff_ids[1]);
    // Deterministic.
    let again = write_image(tempfile::tempdir().unwrap().path(), "x", &img);
    assert_eq!(again.manifest_digest, b.manifest_digest);
    assert!(reg
        .storage_dir()
        .join("docker/registry/v2/repositories/test/gzip")
        .is_dir());
}

#[test]
fn zstd_and_uncompressed_pushed_unchanged() {
    let reg = Registry::start();
    let img = Image::new(vec![
        Layer::busybox(Comp::Zstd),
        small_layer(Comp::None, "plain"),
    ]);
    let b = push_image(&reg, "test/zstd", "latest", &img);
    check_image(&reg, "test/zstd", "latest", &b, OCI_MANIFEST);
    let m: serde_json::Value = serde_json::from_slice(&b.manifest).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_ZSTD);
    assert_eq!(m["layers"][1]["mediaType"], OCI_LAYER);
}

#[test]
fn docker_media_types_pushed_unchanged() {
    let reg = Registry::start();
    let mut img = Image::new(vec![
        Layer::busybox(Comp::Gzip),
        small_layer(Comp::None, "plain"),
    ]);
    img.docker_media_types = true;
    let b = push_image(&reg, "test/docker", "v2", &img);
    check_image(&reg, "test/docker", "v2", &b, DOCKER_MANIFEST);
    let m: serde_json::Value = serde_json::from_slice(&b.manifest).unwrap();
    assert_eq!(m["config"]["mediaType"], DOCKER_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], DOCKER_LAYER_GZIP);
    assert_eq!(m["layers"][1]["mediaType"], DOCKER_LAYER);

    // skopeo can't read a Docker manifest with a zstd (OCI-typed) layer: pushed over HTTP.
    let mut img = Image::new(vec![small_layer(Comp::Zstd, "z")]);
    img.docker_media_types = true;
    let b = push_image(&reg, "test/docker-zstd", "v1", &img);
    check_image(&reg, "test/docker-zstd", "v1", &b, DOCKER_MANIFEST);
    let m: serde_json::Value = serde_json::from_slice(&b.manifest).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_ZSTD);
}

fn platforms(docker: bool) -> Vec<Image> {
    let mut v = vec![
        Image::new(vec![small_layer(Comp::Gzip, "amd64")]),
        Image::new(vec![small_layer(Comp::Gzip, "arm64")]).platform("arm64", None),
        Image::new(vec![small_layer(Comp::Gzip, "armv7")]).platform("arm", Some("v7")),
    ];
    for i in &mut v {
        i.docker_media_types = docker;
    }
    v
}

#[test]
fn index_pushed_unchanged() {
    for (docker, media_type) in [(false, OCI_INDEX), (true, DOCKER_LIST)] {
        let reg = Registry::start();
        let images = platforms(docker);
        let (digest, children) = push_index(&reg, "test/multi", "all", &images);
        let index = index_bytes(&images);
        assert_eq!(sha256_digest(&index), digest);
        check_manifest(&reg, "test/multi", "all", &index, &digest);
        let v: serde_json::Value = serde_json::from_slice(&index).unwrap();
        assert_eq!(v["mediaType"], media_type);
        assert_eq!(v["manifests"][2]["platform"]["variant"], "v7");
        assert_eq!(v["manifests"][1]["platform"]["architecture"], "arm64");
        for c in &children {
            check_manifest(
                &reg,
                "test/multi",
                &c.manifest_digest,
                &c.manifest,
                &c.manifest_digest,
            );
        }
    }
}

#[test]
fn layout_tags_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_image(
        dir.path(),
        "t",
        &Image::new(vec![small_layer(Comp::Gzip, "a")]),
    );
    let b = write_image(
        dir.path(),
        "t",
        &Image::new(vec![small_layer(Comp::Gzip, "b")]),
    );
    write_image(
        dir.path(),
        "other",
        &Image::new(vec![small_layer(Comp::Gzip, "a")]),
    );
    assert_ne!(a.manifest_digest, b.manifest_digest);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let m = index["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    let t = m
        .iter()
        .find(|d| d["annotations"][REF_NAME] == "t")
        .unwrap();
    assert_eq!(t["digest"], b.manifest_digest.as_str());
    // umoci reads it as a valid layout.
    if Command::new("umoci").arg("--version").output().is_ok() {
        let mut c = Command::new("umoci");
        c.args(["stat", "--image"])
            .arg(format!("{}:t", dir.path().display()));
        ok(&exec_bounded(c, Duration::from_secs(60)));
    }
}

#[test]
fn whiteouts_and_raw_entries() {
    let l = Layer::new(
        Comp::None,
        vec![
            Entry::whiteout("etc/gone"),
            Entry::opaque("var/lib/"),
            Entry::raw_file(b"../escape", b"x", 0o644),
        ],
    );
    let tar = l.tar();
    let mut ar = tar::Archive::new(&tar[..]);
    let names: Vec<Vec<u8>> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            b"etc/.wh.gone".to_vec(),
            b"var/lib/.wh..wh..opq".to_vec(),
            b"../escape".to_vec()
        ]
    );
}

#[test]
fn basic_auth_registry() {
    let reg = Registry::start_basic_auth("alice", "s3cret");
    let r = http_get(&reg.addr, "/v2/", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Basic"));
    let bad = format!("Basic {}", base64_encode(b"alice:wrong"));
    assert_eq!(
        http_get(&reg.addr, "/v2/", &[("Authorization", &bad)]).status,
        401
    );
    assert_eq!(reg.get("/v2/", &[]).status, 200);

    // skopeo without credentials is refused...
    let dir = tempfile::tempdir().unwrap();
    let img = Image::new(vec![small_layer(Comp::Gzip, "auth")]);
    write_image(dir.path(), "t", &img);
    let mut c = Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wrong",
    ])
    .arg(format!("oci:{}:t", dir.path().display()))
    .arg(format!("docker://{}/test/auth:t", reg.addr));
    let out = exec_bounded(c, Duration::from_secs(120));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    // ...and accepted with them.
    let b = push_image(&reg, "test/auth", "t", &img);
    check_image(&reg, "test/auth", "t", &b, OCI_MANIFEST);
}

#[test]
fn tls_registry() {
    let reg = Registry::start_tls();
    assert!(reg.url("/v2/").starts_with("https://127.0.0.1:"));
    let b = push_image(&reg, "test/tls", "t", &Image::busybox());
    // Verified TLS with the CA: the certificate fits 127.0.0.1.
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(reg.ca_cert.as_ref().unwrap(), certs.path().join("ca.crt")).unwrap();
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--raw", "--tls-verify=true", "--cert-dir"])
        .arg(certs.path())
        .arg(format!("docker://{}/test/tls:t", reg.addr));
    let raw = exec_bounded(c, Duration::from_secs(60));
    assert_eq!(ok(&raw).as_bytes(), b.manifest.as_slice());
    // Without the CA it is refused.
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--raw", "--tls-verify=true"])
        .arg(format!("docker://{}/test/tls:t", reg.addr));
    let out = exec_bounded(c, Duration::from_secs(60));
    assert!(!out.status.success());
}

fn bearer(proxy: &TokenProxy, creds: Option<&str>) -> String {
    let auth = creds.map(|c| format!("Basic {}", base64_encode(c.as_bytes())));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = http_get(
        &proxy.addr,
        "/token?service=barge-test&scope=repository:test/img:pull",
        &headers,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["token"], v["access_token"]);
    format!("Bearer {}", v["token"].as_str().unwrap())
}

#[test]
fn token_proxy() {
    let reg = Registry::start();
    let layer = Layer::busybox(Comp::Gzip);
    let b = push_image(&reg, "test/img", "v1", &Image::new(vec![layer.clone()]));
    let proxy = TokenProxy::start(&reg.addr, Some(("bob".into(), "pw".into())));

    // No token: challenges.
    let r = http_get(&proxy.addr, "/v2/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate").unwrap(),
        format!("Bearer realm=\"{}\",service=\"barge-test\"", proxy.realm())
    );
    let r = http_get(&proxy.addr, "/v2/test/img/manifests/v1", &[]);
    assert_eq!(r.status, 401);
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .ends_with(",scope=\"repository:test/img:pull\""));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED");
    let r = http_get(
        &proxy.addr,
        "/v2/test/img/manifests/v1",
        &[("Authorization", "Bearer nope")],
    );
    assert_eq!(r.status, 401);

    // The token service wants the credentials.
    let r = http_get(&proxy.addr, "/token?service=barge-test", &[]);
    assert_eq!(r.status, 401);
    let token = bearer(&proxy, Some("bob:pw"));
    assert_eq!(proxy.token_count(), 2);

    let r = http_get(
        &proxy.addr,
        "/v2/test/img/manifests/v1",
        &[("Authorization", &token), ("Accept", ACCEPT_ALL)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b.manifest);
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(b.manifest_digest.as_str())
    );

    let (_, blob) = layer.blob();
    let path = format!("/v2/test/img/blobs/{}", b.layer_digests[0]);
    let r: HttpResponse = http_get(&proxy.addr, &path, &[("Authorization", &token)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, blob);
    let r = http_get(
        &proxy.addr,
        &path,
        &[("Authorization", &token), ("Range", "bytes=10-")],
    );
    assert_eq!(r.status, 206, "{:?}", r.headers);
    assert_eq!(r.body, blob[10..]);

    // A real client through the proxy, both ways.
    let mut c = Command::new("skopeo");
    c.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:pw",
    ])
    .arg(format!("docker://{}/test/img:v1", proxy.addr));
    assert_eq!(
        ok(&exec_bounded(c, Duration::from_secs(60))).as_bytes(),
        b.manifest.as_slice()
    );
    let dir = tempfile::tempdir().unwrap();
    let img2 = Image::new(vec![small_layer(Comp::Zstd, "via-proxy")]);
    let b2 = write_image(dir.path(), "t", &img2);
    let mut c = Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:pw",
    ])
    .arg(format!("oci:{}:t", dir.path().display()))
    .arg(format!("docker://{}/test/pushed:t", proxy.addr));
    ok(&exec_bounded(c, Duration::from_secs(120)));
    check_image(&reg, "test/pushed", "t", &b2, OCI_MANIFEST);

    // Anonymous token service.
    let anon = TokenProxy::start(&reg.addr, None);
    let token = bearer(&anon, None);
    let r = http_get(
        &anon.addr,
        "/v2/test/img/manifests/v1",
        &[("Authorization", &token), ("Accept", ACCEPT_ALL)],
    );
    assert_eq!(r.status, 200);
    assert!(anon.requests().iter().any(|l| l.ends_with("-> forwarded")));
}

/// A registry holding one 1 MiB random blob in `test/big`: (registry, blob path, bytes).
fn big_blob() -> (Registry, String, Vec<u8>) {
    let reg = Registry::start();
    let mut data = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut data)
        .unwrap();
    let digest = upload_blob(&reg, "test/big", &data);
    (reg, format!("/v2/test/big/blobs/{digest}"), data)
}

#[test]
fn proxy_cuts_blob_downloads() {
    let (reg, path, data) = big_blob();
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            require_token: false,
            cut_after: Some(100_000),
            cut_times: 1,
            ..Default::default()
        },
    );
    // Cut: intact headers announcing the whole blob, 100000 body bytes, EOF.
    let r = http_get(&proxy.addr, &path, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("1048576"));
    assert_eq!(r.body.len(), 100_000);
    assert_eq!(r.body, data[..100_000]);
    // Resume with a range: not cut any more.
    let rest = http_get(&proxy.addr, &path, &[("Range", "bytes=100000-")]);
    assert_eq!(rest.status, 206, "{:?}", rest.headers);
    let mut whole = r.body.clone();
    whole.extend_from_slice(&rest.body);
    assert!(whole == data, "resumed blob differs");
    // cut_times is used up: whole downloads go through.
    let again = http_get(&proxy.addr, &path, &[]);
    assert_eq!(again.status, 200);
    assert!(again.body == data);
    // Other requests aren't touched (and need no token here).
    assert_eq!(http_get(&proxy.addr, "/v2/", &[]).status, 200);
    assert_eq!(
        proxy.blob_requests(),
        vec![
            (path.clone(), None),
            (path.clone(), Some("bytes=100000-".to_string())),
            (path.clone(), None),
        ]
    );
    assert_eq!(proxy.token_count(), 0);
}

#[test]
fn proxy_throttles_bodies() {
    let (reg, path, data) = big_blob();
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            require_token: false,
            bytes_per_sec: Some(2 << 20),
            ..Default::default()
        },
    );
    let t = Instant::now();
    let r = http_get(&proxy.addr, &path, &[]);
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn proxy_options_with_tokens() {
    // Tokens plus a cut: unauthenticated blob GETs are refused and not listed.
    let (reg, path, data) = big_blob();
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            require_token: true,
            cut_after: Some(1000),
            cut_times: 1,
            ..Default::default()
        },
    );
    assert_eq!(http_get(&proxy.addr, &path, &[]).status, 401);
    assert!(proxy.blob_requests().is_empty());
    let token = bearer(&proxy, None);
    let r = http_get(&proxy.addr, &path, &[("Authorization", &token)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data[..1000]);
    let r = http_get(&proxy.addr, &path, &[("Authorization", &token)]);
    assert!(r.body == data);
    assert_eq!(proxy.blob_requests().len(), 2);
}
