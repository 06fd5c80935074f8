//! Registry mirrors: containerd's `certs.d/<registry>/hosts.toml` and docker's
//! `registry-mirrors`, with two real local registries (Debian's docker-registry on 127.0.0.1).
//! Each image says where it came from in a file (`/which`), read back through the mounted
//! rootfs.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use barge_testutil::oci_image::{push_image, Built, Comp, Entry, Image, Layer};
use barge_testutil::registry::{free_port, Registry};
use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
use common::{env, Env};

/// A one-layer image whose `/which` says `who`.
fn tagged_image(who: &str) -> Image {
    Image::new(vec![Layer::new(
        Comp::Gzip,
        vec![Entry::file("which", who.as_bytes(), 0o644)],
    )])
}

fn push(reg: &Registry, repo: &str, who: &str) -> Built {
    push_image(reg, repo, "1", &tagged_image(who))
}

/// `127.0.0.1:PORT` on which nothing listens.
fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Write `certs.d/<ns>/hosts.toml`; returns the namespace directory.
fn hosts_toml(e: &Env, ns: &str, text: &str) -> PathBuf {
    let dir = e.config_dir().join("certs.d").join(ns);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("hosts.toml"), text).unwrap();
    dir
}

fn which(e: &Env, name: &str) -> String {
    e.with_rootfs(name, |root| fs::read_to_string(root.join("which")).unwrap())
}

/// A forwarding front for `reg` that logs every request (no auth).
fn logged(reg: &Registry) -> TokenProxy {
    TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            require_token: false,
            ..Default::default()
        },
    )
}

#[test]
fn mirror_answers_before_the_origin() {
    let origin = Registry::start();
    let mirror = Registry::start();
    push(&origin, "app", "origin");
    let built = push(&mirror, "app", "mirror");
    let front = logged(&origin);
    let mut e = env();
    // containerd's directory name for host:port (`host_port_`).
    let ns = front.addr.replace(':', "_") + "_";
    hosts_toml(
        &e,
        &ns,
        &format!(
            "[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            mirror.addr
        ),
    );
    e.reload_config();
    let name = format!("{}/app:1", front.addr);
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.name, name, "the image keeps the name asked for");
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "mirror");
    assert_eq!(front.requests(), Vec::<String>::new(), "origin not asked");
}

#[test]
fn mirror_down_falls_back_to_the_origin() {
    let origin = Registry::start();
    let built = push(&origin, "app", "origin");
    let mut e = env();
    hosts_toml(
        &e,
        &origin.addr,
        &format!("[host.\"http://{}\"]\n", dead_addr()),
    );
    e.reload_config();
    let name = format!("{}/app:1", origin.addr);
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "origin");
}

#[test]
fn mirror_without_the_image_falls_back_and_server_is_the_last_host() {
    let origin = Registry::start();
    let empty_mirror = Registry::start();
    push(&empty_mirror, "elsewhere", "wrong");
    let built = push(&origin, "app", "origin");
    let mirror_front = logged(&empty_mirror);
    let mut e = env();
    // `server` points the registry's name at another address (origin), after the mirror.
    let name_reg = dead_addr();
    hosts_toml(
        &e,
        &name_reg,
        &format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\n",
            origin.addr, mirror_front.addr
        ),
    );
    e.reload_config();
    let name = format!("{name_reg}/app:1");
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "origin");
    let asked = mirror_front.requests();
    assert!(
        asked.iter().any(|r| r.contains("/v2/app/manifests/1")),
        "the mirror was asked first: {asked:?}"
    );
}

#[test]
fn every_host_tried_is_named_when_all_fail() {
    let empty = Registry::start();
    let dead = dead_addr();
    let origin_dead = dead_addr();
    let mut e = env();
    hosts_toml(
        &e,
        &origin_dead,
        &format!(
            "[host.\"http://{dead}\"]\n[host.\"http://{}\"]\n",
            empty.addr
        ),
    );
    e.reload_config();
    let err = e
        .pull(&format!("{origin_dead}/app:1"))
        .unwrap_err()
        .to_string();
    for host in [&dead, &empty.addr, &origin_dead] {
        assert!(err.contains(host.as_str()), "{host} not named: {err}");
    }
    assert!(err.contains("3 hosts"), "{err}");
    assert!(
        err.contains("Connection refused") && err.contains("manifest unknown"),
        "{err}"
    );
    e.assert_empty();
}

#[test]
fn pull_only_mirror_serves_content_but_does_not_resolve() {
    let origin = Registry::start();
    let mirror = Registry::start();
    // Same image on both, and under the mirror's tag a different one it must not resolve to.
    let built = push(&origin, "app", "same");
    push(&mirror, "app", "same");
    push_image(&mirror, "app", "1", &tagged_image("untrusted"));
    // The origin's copy is the one whose digest the origin resolves.
    let front = logged(&origin);
    let mut e = env();
    hosts_toml(
        &e,
        &front.addr,
        &format!(
            "[host.\"http://{}\"]\n  capabilities = [\"pull\"]\n",
            mirror.addr
        ),
    );
    e.reload_config();
    let name = format!("{}/app:1", front.addr);
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "same");
    let asked = front.requests();
    assert!(
        asked.iter().any(|r| r.contains("/manifests/1")),
        "the tag was resolved on the origin: {asked:?}"
    );
    assert_eq!(
        front.blob_requests(),
        vec![],
        "content came from the mirror: {asked:?}"
    );
}

#[test]
fn override_path_is_the_api_root() {
    let mirror = Registry::start();
    // The mirror keeps the registry's images under `upstream/`.
    let built = push(&mirror, "upstream/team/app", "mirror");
    let origin = dead_addr();
    let mut e = env();
    hosts_toml(
        &e,
        &origin,
        &format!(
            "[host.\"http://{}/v2/upstream\"]\n  override_path = true\n",
            mirror.addr
        ),
    );
    e.reload_config();
    let name = format!("{origin}/team/app:1");
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "mirror");
}

#[test]
fn tls_mirror_with_ca_and_skip_verify() {
    let mirror = Registry::start_tls();
    let layout = tempfile::tempdir().unwrap();
    let built =
        barge_testutil::oci_image::write_image(layout.path(), "1", &tagged_image("tls mirror"));
    barge_testutil::registry::skopeo_copy(
        &format!("oci:{}:1", layout.path().display()),
        &format!("docker://{}/app:1", mirror.addr),
    );
    let origin = dead_addr();
    let name = format!("{origin}/app:1");
    let host = format!("[host.\"https://{}\"]\n", mirror.addr);

    // Not trusted: the mirror fails (its certificate), the origin is down: both named.
    let mut e = env();
    hosts_toml(&e, &origin, &host);
    e.reload_config();
    let err = e.pull(&name).unwrap_err().to_string();
    assert!(err.contains(&mirror.addr) && err.contains(&origin), "{err}");

    // `ca`, relative to the hosts file.
    let dir = hosts_toml(&e, &origin, &format!("{host}  ca = \"mirror-ca.pem\"\n"));
    fs::copy(mirror.ca_cert.as_ref().unwrap(), dir.join("mirror-ca.pem")).unwrap();
    e.reload_config();
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
    assert_eq!(which(&e, &name), "tls mirror");

    // `skip_verify` instead of a CA.
    let e = env();
    hosts_toml(&e, &origin, &format!("{host}  skip_verify = true\n"));
    let mut e = e;
    e.reload_config();
    let rec = e.pull(&name).unwrap();
    assert_eq!(rec.manifest.as_str(), built.manifest_digest);
}

#[test]
fn docker_registry_mirrors_for_docker_io_names() {
    let mirror = Registry::start();
    let official = push(&mirror, "library/busybox", "official");
    let user = push(&mirror, "someone/tool", "user");
    let mut e = env();
    fs::write(
        e.config_dir().join("config.json"),
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, mirror.addr),
    )
    .unwrap();
    e.reload_config();
    // `busybox:1` is docker.io/library/busybox:1: the mirror is asked for library/busybox.
    let rec = e.pull("busybox:1").unwrap();
    assert_eq!(rec.name, "docker.io/library/busybox:1");
    assert_eq!(rec.manifest.as_str(), official.manifest_digest);
    assert_eq!(which(&e, "busybox:1"), "official");
    let rec = e.pull("docker.io/someone/tool:1").unwrap();
    assert_eq!(rec.name, "docker.io/someone/tool:1");
    assert_eq!(rec.manifest.as_str(), user.manifest_digest);
    // Other registries don't use docker's mirrors.
    let err = e
        .pull(&format!("{}/library/busybox:1", dead_addr()))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&mirror.addr), "{err}");
}
