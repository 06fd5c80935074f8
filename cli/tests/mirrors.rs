//! Registry mirrors through the `barge` binary: `run`'s implicit pull and `pull` read docker's
//! `registry-mirrors` and containerd's `hosts.toml` from the config directory.

use std::fs;

use barge_testutil::engine::BargeEnv;
use barge_testutil::oci_image::{push_image, Comp, Entry, Image, Layer};
use barge_testutil::registry::{free_port, Registry};

/// busybox plus `/which` saying `who`.
fn image(who: &str) -> Image {
    let mut layer = Layer::busybox(Comp::Gzip);
    layer
        .entries
        .push(Entry::file("which", who.as_bytes(), 0o644));
    Image::new(vec![layer])
}

#[test]
fn run_pulls_docker_io_names_from_registry_mirrors() {
    let mirror = Registry::start();
    push_image(&mirror, "library/busybox", "mirrored", &image("mirror"));
    let b = BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let etc = b.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("config.json"),
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, mirror.addr),
    )
    .unwrap();
    let out = b.ok(&["run", "--rm", "busybox:mirrored", "cat", "/which"]);
    assert_eq!(out, "mirror");
    let images = b.ok(&["images", "--format", "json"]);
    assert!(
        images.lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["Repository"] == "busybox" && v["Tag"] == "mirrored"
        }),
        "named as asked, docker.io's busybox: {images}"
    );
}

#[test]
fn pull_falls_back_from_a_dead_mirror_in_hosts_toml() {
    let origin = Registry::start();
    push_image(&origin, "app", "1", &image("origin"));
    let b = BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let ns = b.dir.path().join("etc/certs.d").join(&origin.addr);
    fs::create_dir_all(&ns).unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    fs::write(ns.join("hosts.toml"), format!("[host.\"http://{dead}\"]\n")).unwrap();
    let name = format!("{}/app:1", origin.addr);
    b.ok(&["pull", &name]);
    let out = b.ok(&["run", "--rm", &name, "cat", "/which"]);
    assert_eq!(out, "origin");
    // With the origin gone too, the error names both hosts.
    let addr = origin.addr.clone();
    drop(origin);
    let out = b.run(&["pull", &format!("{addr}/app:2")]);
    assert!(!out.status.success());
    let err = barge_testutil::stderr(&out);
    assert!(
        err.contains(&dead) && err.contains(&addr) && err.contains("2 hosts"),
        "{err}"
    );
}
