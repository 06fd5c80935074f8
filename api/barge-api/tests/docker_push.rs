//! `docker push` (the docker 28 CLI) through `barge daemon` to a real local registry with
//! basic auth, credentials from `docker login`; and the raw `POST /images/{name}/push` stream
//! (docker's JSON messages and the closing `aux`).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Stdio;

use barge_testutil::registry::Registry;
use common::*;

#[test]
fn docker_push_with_docker_login_credentials() {
    let reg = Registry::start_basic_auth("fred", "s4il");
    let d = Daemon::start();
    let name = format!("{}/fleet/bb:v2", reg.addr);
    d.docker_ok(&["tag", "bb", &name]);

    // Before login: the registry's refusal, in the stream, and nothing pushed.
    let o = d.docker(&["push", &name]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("401"), "{said}");
    assert_eq!(reg.get("/v2/fleet/bb/manifests/v2", &[]).status, 404);

    // docker login (the daemon checks them), then docker push sends them (X-Registry-Auth).
    let mut login = d.docker_cmd(&["login", "-u", "fred", "--password-stdin", &reg.addr]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"s4il\n").unwrap();
    let o = wait_output(child, DOCKER_TIMEOUT);
    assert!(o.status.success(), "docker login: {}", stderr(&o));

    let out = d.docker_ok(&["push", &name]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/fleet/bb]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("v2: digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in {out}"));
    let digest = line.split_whitespace().nth(2).unwrap();
    let m = reg.get(
        &format!("/v2/fleet/bb/manifests/{digest}"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    );
    assert_eq!(m.status, 200, "{}", m.text());

    // Again: docker's "Layer already exists", the same digest.
    let again = d.docker_ok(&["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert!(again.contains(digest), "{again}");

    // Not stored: docker's message.
    let o = d.docker(&["push", &format!("{}/fleet/none:1", reg.addr)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not exist locally"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn push_stream_messages_and_aux() {
    let reg = Registry::start();
    let d = Daemon::start();
    let name = format!("{}/raw/bb", reg.addr);
    d.docker_ok(&["tag", "bb", &format!("{name}:3")]);
    let r = d.request("POST", &format!("/images/{name}/push?tag=3"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let msgs: Vec<serde_json::Value> = r
        .text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:#?}");
    assert_eq!(
        msgs[0]["status"],
        format!("The push refers to repository [{name}]")
    );
    assert!(msgs
        .iter()
        .any(|m| m["status"] == "Preparing" && m["id"].is_string()));
    assert!(msgs.iter().any(|m| m["status"] == "Pushing"
        && m["progressDetail"]["current"].as_u64().is_some()
        && m["progressDetail"]["total"].as_u64().is_some()));
    assert!(msgs.iter().any(|m| m["status"] == "Pushed"));
    let aux = &msgs.last().unwrap()["aux"];
    assert_eq!(aux["Tag"], "3", "{msgs:#?}");
    let digest = aux["Digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"));
    let m = reg.get(
        &format!("/v2/raw/bb/manifests/{digest}"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    );
    assert_eq!(m.status, 200);
    assert_eq!(aux["Size"].as_u64().unwrap(), m.body.len() as u64);
    let status = &msgs[msgs.len() - 2]["status"];
    assert_eq!(
        status.as_str().unwrap(),
        format!("3: digest: {digest} size: {}", m.body.len())
    );

    // Not stored: 404 before any stream.
    let r = d.request("POST", &format!("/images/{name}/push?tag=nope"), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    // A bad name: 400.
    let r = d.request("POST", "/images/BAD%20NAME/push?tag=1", b"");
    assert!(
        r.status == 400 || r.status == 404,
        "{} {}",
        r.status,
        r.text()
    );
}
