//! Pushes to a real registry (Debian's docker-registry on 127.0.0.1, plain, with basic auth,
//! or behind the test token proxy, which also counts and cuts requests): what was pushed is
//! pulled back by digest into a clean store and compared file by file.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::Arc;

use barge_image::progress::{Event, LayerState};
use barge_image::push::upload::Outcome;
use barge_image::push::{push, PushOptions, Pushed};
use barge_image::reference::ImageRef;
use barge_image::Error;
use barge_testutil::oci_image::{push_image, Comp, Entry, Image, Layer};
use barge_testutil::registry::Registry;
use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
use common::{env, Collect, Env};

/// A two-layer image (busybox, then a file of `big` noise bytes) stored in `e` as `name`,
/// pulled from a registry of its own (which is gone afterwards).
fn stored_image(e: &Env, name: &str, big: usize) -> Vec<u8> {
    stored_image_with(e, name, big, false)
}

/// [`stored_image`], with Docker v2 media types when `docker`.
fn stored_image_with(e: &Env, name: &str, big: usize, docker: bool) -> Vec<u8> {
    let src = Registry::start();
    let data = barge_testutil::noise(big, 11);
    let mut image = Image::new(vec![
        Layer::busybox(Comp::Gzip),
        Layer::new(
            Comp::Gzip,
            vec![Entry::file("data/big", data.clone(), 0o644)],
        ),
    ]);
    image.docker_media_types = docker;
    push_image(&src, "src", "1", &image);
    let pulled = e.pull(&format!("{}/src:1", src.addr)).unwrap();
    e.store.tag(&pulled.name, name).unwrap();
    e.store.db.delete_image(&pulled.name).unwrap();
    data
}

fn run_push(
    e: &Env,
    local: &str,
    target: &str,
    opts: PushOptions,
) -> (barge_image::Result<Pushed>, Vec<Event>) {
    let progress = Arc::new(Collect::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(push(
        e.store.clone(),
        &e.config,
        local,
        &ImageRef::parse(target).unwrap(),
        &opts,
        progress.clone(),
    ));
    (out, progress.events())
}

fn layer_states(events: &[Event]) -> Vec<LayerState> {
    events
        .iter()
        .filter_map(|ev| match ev {
            Event::Layer { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// Requests in a proxy's log that match `method` and contain `needle`.
fn count(proxy: &TokenProxy, method: &str, needle: &str) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|l| l.starts_with(&format!("{method} ")) && l.contains(needle))
        .count()
}

#[test]
fn push_with_basic_auth_then_pull_by_digest_into_a_clean_store() {
    let reg = Registry::start_basic_auth("alice", "s3cret");
    let mut e = env();
    let name = format!("{}/team/app:v1", reg.addr);
    let data = stored_image(&e, &name, 300_000);
    e.config
        .store_credentials(&reg.addr, "alice", "s3cret")
        .unwrap();
    e.reload_config();
    let (out, events) = run_push(&e, &name, &name, PushOptions::default());
    let pushed = out.unwrap();
    let rec = e.store.resolve(&name).unwrap();
    // The stored manifest, byte for byte: the same digest.
    assert_eq!(pushed.digest, rec.manifest);
    assert_eq!(pushed.size, e.store.content.size(&rec.manifest).unwrap());
    assert_eq!(pushed.blobs.len(), 3, "{:?}", pushed.blobs);
    assert!(pushed.blobs.iter().all(|(_, o)| *o == Outcome::Uploaded));
    let states = layer_states(&events);
    assert_eq!(
        states.iter().filter(|s| **s == LayerState::Pushed).count(),
        2,
        "{states:?}"
    );
    assert!(
        matches!(&events[0], Event::PushStarted { repository } if repository.ends_with("/team/app"))
    );

    // A clean store pulls it back by digest (with the credentials) and has the files.
    let mut clean = env();
    clean
        .config
        .store_credentials(&reg.addr, "alice", "s3cret")
        .unwrap();
    clean.reload_config();
    let by_digest = format!("{}/team/app@{}", reg.addr, pushed.digest);
    let got = clean.pull(&by_digest).unwrap();
    assert_eq!(got.manifest, pushed.digest);
    clean.with_rootfs(&got.name, |root| {
        assert_eq!(fs::read(root.join("data/big")).unwrap(), data);
        assert_eq!(
            fs::read(root.join("bin/busybox")).unwrap(),
            fs::read("/bin/busybox").unwrap()
        );
    });
}

#[test]
fn wrong_password_is_unauthorized_and_pushes_nothing() {
    let reg = Registry::start_basic_auth("alice", "s3cret");
    let mut e = env();
    let name = format!("{}/app:1", reg.addr);
    stored_image(&e, &name, 1000);
    e.config
        .store_credentials(&reg.addr, "alice", "wrong")
        .unwrap();
    e.reload_config();
    let (out, _) = run_push(&e, &name, &name, PushOptions::default());
    let err = out.unwrap_err();
    let unauthorized = match &err {
        Error::Unauthorized { .. } => true,
        Error::Layer { source, .. } => matches!(**source, Error::Unauthorized { .. }),
        _ => false,
    };
    assert!(unauthorized, "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&reg.addr) && text.contains("401"), "{text}");
    // No manifest, no tag, no repository on the registry.
    let m = reg.get(
        "/v2/app/manifests/1",
        &[("Accept", barge_image::manifest::OCI_MANIFEST)],
    );
    assert_eq!(m.status, 404, "{}", m.text());
    let tags = reg.get("/v2/app/tags/list", &[]);
    assert_eq!(tags.status, 404, "{}", tags.text());
    // Without credentials: the same clear refusal.
    let mut anon = env();
    stored_image(&anon, &name, 1000);
    anon.reload_config();
    let (out, _) = run_push(&anon, &name, &name, PushOptions::default());
    let text = out.unwrap_err().to_string();
    assert!(
        text.contains("401") && text.contains("barge login"),
        "{text}"
    );
}

#[test]
fn second_push_finds_every_layer_and_a_new_repository_mounts_them() {
    let reg = Registry::start();
    let proxy = TokenProxy::start_with(&reg.addr, ProxyOptions::default());
    let e = env();
    let first = format!("{}/a/app:1", proxy.addr);
    stored_image(&e, &first, 200_000);
    let (out, _) = run_push(&e, &first, &first, PushOptions::default());
    let pushed = out.unwrap();
    let uploads = count(&proxy, "POST", "/blobs/uploads/");
    assert_eq!(uploads, 3, "{:#?}", proxy.requests());

    // Again: the registry has everything; HEADs only, no upload, and the same digest.
    let before = proxy.requests().len();
    let (out, events) = run_push(&e, &first, &first, PushOptions::default());
    let again = out.unwrap();
    assert_eq!(again.digest, pushed.digest);
    assert!(
        again.blobs.iter().all(|(_, o)| *o == Outcome::Exists),
        "{:?}",
        again.blobs
    );
    let new: Vec<String> = proxy.requests()[before..].to_vec();
    assert_eq!(
        new.iter().filter(|l| l.starts_with("HEAD ")).count(),
        3,
        "{new:#?}"
    );
    assert!(
        !new.iter()
            .any(|l| l.starts_with("POST ") || l.starts_with("PATCH ")),
        "{new:#?}"
    );
    let states = layer_states(&events);
    assert_eq!(
        states
            .iter()
            .filter(|s| **s == LayerState::RemoteExists)
            .count(),
        2,
        "{states:?}"
    );

    // The same image under another repository of the registry: mounted, not uploaded.
    let second = format!("{}/b/app:1", proxy.addr);
    e.store.tag(&first, &second).unwrap();
    let before = proxy.requests().len();
    let (out, events) = run_push(&e, &second, &second, PushOptions::default());
    let moved = out.unwrap();
    assert_eq!(moved.digest, pushed.digest);
    assert!(
        moved
            .blobs
            .iter()
            .all(|(_, o)| *o == Outcome::Mounted("a/app".into())),
        "{:?}",
        moved.blobs
    );
    let new: Vec<String> = proxy.requests()[before..].to_vec();
    assert_eq!(
        new.iter()
            .filter(|l| l.starts_with("POST ")
                && l.contains("mount=")
                && l.contains("from=a%2Fapp"))
            .count(),
        3,
        "{new:#?}"
    );
    assert!(!new.iter().any(|l| l.starts_with("PATCH ")), "{new:#?}");
    assert!(layer_states(&events)
        .iter()
        .any(|s| matches!(s, LayerState::Mounted { from } if from == "a/app")));
    let m = reg.get(
        "/v2/b/app/manifests/1",
        &[("Accept", barge_image::manifest::OCI_MANIFEST)],
    );
    assert_eq!(m.status, 200, "{}", m.text());
}

/// Push `name` (a 2 MiB noise layer besides busybox) through a proxy that cuts PATCH number
/// `skip + 1` after forwarding `after` bytes of it; 1 MiB chunks, one blob at a time.
fn push_through_cut(skip: usize, after: u64) -> (TokenProxy, Registry, Vec<Event>, Vec<String>) {
    let reg = Registry::start();
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            cut_upload_after: Some(after),
            upload_cut_times: 1,
            upload_cut_skip: skip,
            ..Default::default()
        },
    );
    let e = env();
    let name = format!("{}/cut/app:1", proxy.addr);
    let data = stored_image(&e, &name, 2 << 20);
    let opts = PushOptions {
        chunk_size: 1 << 20,
        parallel: 1,
        ..Default::default()
    };
    let (out, events) = run_push(&e, &name, &name, opts);
    let pushed = out.unwrap();
    let log = proxy.requests();
    assert_eq!(count(&proxy, "PATCH", "-> cut"), 1, "{log:#?}");
    // The upload's status was asked for after the cut.
    let cut_at = log.iter().position(|l| l.ends_with("-> cut")).unwrap();
    assert!(
        log[cut_at + 1..]
            .iter()
            .any(|l| l.starts_with("GET ") && l.contains("/blobs/uploads/")),
        "{log:#?}"
    );
    // What was pushed is whole: a clean store pulls it by digest.
    let clean = env();
    let got = clean
        .pull(&format!("{}/cut/app@{}", reg.addr, pushed.digest))
        .unwrap();
    clean.with_rootfs(&got.name, |root| {
        assert!(
            fs::read(root.join("data/big")).unwrap() == data,
            "content intact"
        );
    });
    (proxy, reg, events, log)
}

fn resumed_at(events: &[Event]) -> Vec<u64> {
    layer_states(events)
        .iter()
        .filter_map(|s| match s {
            LayerState::Resuming { from } => Some(*from),
            _ => None,
        })
        .collect()
}

#[test]
fn upload_cut_mid_blob_resumes_at_the_registry_offset() {
    // The second PATCH (bytes from 1 MiB of the first blob over 1 MiB) is cut before the
    // registry got any of it: the registry says it has 1 MiB, the upload goes on from there.
    let (proxy, _reg, events, log) = push_through_cut(1, 0);
    assert_eq!(
        resumed_at(&events),
        vec![1 << 20],
        "{:?}",
        layer_states(&events)
    );
    // The same upload went on: one upload session per blob, no new one.
    assert_eq!(count(&proxy, "POST", "/blobs/uploads/"), 3, "{log:#?}");
}

#[test]
fn upload_cut_after_a_partial_write_starts_the_blob_over() {
    // docker-registry (distribution 2.8) keeps the 400000 bytes it got but refuses the
    // upload's stale state afterwards: the blob is sent again in a new upload.
    let (proxy, reg, events, log) = push_through_cut(0, 400_000);
    assert_eq!(resumed_at(&events), vec![0], "{:?}", layer_states(&events));
    assert_eq!(count(&proxy, "POST", "/blobs/uploads/"), 4, "{log:#?}");
    assert!(reg.log().contains("resumed at wrong off"), "{}", reg.log());
}

#[test]
fn bearer_token_registry() {
    let reg = Registry::start();
    let proxy = TokenProxy::start(&reg.addr, Some(("tok".into(), "en".into())));
    let mut e = env();
    let name = format!("{}/tok/app:2", proxy.addr);
    stored_image(&e, &name, 10_000);
    e.config
        .store_credentials(&proxy.addr, "tok", "en")
        .unwrap();
    e.reload_config();
    let (out, _) = run_push(&e, &name, &name, PushOptions::default());
    let pushed = out.unwrap();
    assert!(proxy.token_count() >= 1);
    assert!(
        proxy
            .token_queries
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.contains("tok%2Fapp%3Apull%2Cpush") || q.contains("tok/app:pull,push")),
        "{:?}",
        proxy.token_queries.lock().unwrap()
    );
    let m = reg.get(
        &format!("/v2/tok/app/manifests/{}", pushed.digest),
        &[("Accept", barge_image::manifest::OCI_MANIFEST)],
    );
    assert_eq!(m.status, 200, "{}", m.text());
}

#[test]
fn expired_token_is_renewed_mid_push() {
    let reg = Registry::start();
    // Every token is good for 3 requests: a push of 3 blobs in 1 MiB chunks outlives several.
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            require_token: true,
            creds: Some(("tok".into(), "en".into())),
            token_max_uses: Some(3),
            ..Default::default()
        },
    );
    let mut e = env();
    let name = format!("{}/exp/app:1", proxy.addr);
    let data = stored_image(&e, &name, 3 << 20);
    e.config
        .store_credentials(&proxy.addr, "tok", "en")
        .unwrap();
    e.reload_config();
    let opts = PushOptions {
        chunk_size: 1 << 20,
        parallel: 1,
        ..Default::default()
    };
    let (out, _) = run_push(&e, &name, &name, opts);
    let pushed = out.unwrap();
    assert!(proxy.token_count() >= 4, "{:#?}", proxy.requests());
    let clean = env();
    let got = clean
        .pull(&format!("{}/exp/app@{}", reg.addr, pushed.digest))
        .unwrap();
    clean.with_rootfs(&got.name, |root| {
        assert!(
            fs::read(root.join("data/big")).unwrap() == data,
            "content intact"
        );
    });
}

#[test]
fn docker_media_types_are_pushed_as_stored() {
    let reg = Registry::start();
    let e = env();
    let name = format!("{}/dock/app:3", reg.addr);
    stored_image_with(&e, &name, 5000, true);
    let (out, _) = run_push(&e, &name, &name, PushOptions::default());
    let pushed = out.unwrap();
    assert_eq!(pushed.digest, e.store.resolve(&name).unwrap().manifest);
    let m = reg.get(
        "/v2/dock/app/manifests/3",
        &[("Accept", barge_image::manifest::DOCKER_MANIFEST)],
    );
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(
        m.header("Content-Type"),
        Some(barge_image::manifest::DOCKER_MANIFEST)
    );
    assert_eq!(barge_image::Digest::of(&m.body), pushed.digest);
    assert!(
        m.text().contains(barge_image::manifest::DOCKER_CONFIG),
        "{}",
        m.text()
    );
}

#[test]
fn refused_targets() {
    let e = env();
    let (out, _) = run_push(
        &e,
        "127.0.0.1:1/none:1",
        "127.0.0.1:1/none:1",
        PushOptions::default(),
    );
    assert!(
        matches!(out, Err(Error::NotFound { what: "image", .. })),
        "{out:?}"
    );
    let d = format!("127.0.0.1:1/x@sha256:{}", "a".repeat(64));
    let (out, _) = run_push(&e, "x", &d, PushOptions::default());
    assert!(matches!(out, Err(Error::Invalid { .. })), "{out:?}");
}
