//! The fleet API over https (the hub's default) with the real binaries: `barge fleet` with
//! the admin.conf's CA pinned, `curl --cacert`, an admin client certificate made by
//! `barge fleet cert create` and used instead of the token, then a CA rotation while an agent
//! is connected: the agent gets a certificate from the new CA without re-joining, the old CA
//! is retired, and the agent still connects after a restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use barge_edge_e2e::util::poll;
use barge_edge_e2e::Fleet;
use common::{Cloud, AGENT_ARGS};

/// `openssl x509 -noout -issuer -in FILE`.
fn issuer(cert: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn cas(fleet: &Fleet) -> Vec<String> {
    let v = fleet.json(&["get", "ca"]);
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        // `CN=barge fleet CA ...`: the name, as openssl prints it in an issuer too.
        .map(|i| {
            let s = i["subject"].as_str().unwrap();
            s.strip_prefix("CN=").unwrap_or(s).to_string()
        })
        .collect()
}

#[test]
fn https_fleet_admin_certificate_and_ca_rotation_with_a_connected_agent() {
    let cloud = Cloud::start();
    let conf = cloud.hub.admin_conf();
    assert_eq!(conf.server, cloud.hub.api_url());
    assert!(conf.server.starts_with("https://"), "{conf:?}");
    let ca = conf.ca.clone().expect("admin.conf has the CA");

    // curl with the CA file and the token.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca_file)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let url = format!("{}/api/v1/nodes", conf.server);
    let token = conf.token.clone().unwrap();
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {token}"), &url]),
        "200"
    );
    assert_eq!(curl(&[&url]), "401");

    // An admin certificate: the key stays in DIR; its config works without the token.
    let out = dir.path().join("alice");
    let printed = cloud.fleet.ok(&[
        "cert",
        "create",
        "--name",
        "alice",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(printed.contains("alice.conf"), "{printed}");
    let key_mode = std::fs::metadata(out.join("alice.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let alice_conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("alice.conf")).unwrap()).unwrap();
    assert!(alice_conf["token"].is_null(), "{alice_conf}");
    let alice = Fleet::new(&out.join("alice.conf"));
    assert!(alice.nodes().is_empty());
    // curl with the certificate and no token.
    let crt = out.join("alice.crt");
    let key = out.join("alice.key");
    assert_eq!(
        curl(&[
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            &url
        ]),
        "200"
    );

    // An agent, connected.
    let mut a = cloud.device("edge-r", &[], None);
    cloud.wait_ready(&mut a);
    let node_crt = a.root().join("edge/node.crt");
    let old_issuer = issuer(&node_crt);
    let before = cas(&alice);
    assert_eq!(before.len(), 1);
    assert!(
        old_issuer.contains(&before[0]),
        "{old_issuer} vs {before:?}"
    );

    // Rotate (with the client certificate): two CAs, the new one first.
    alice.ok(&["ca", "rotate"]);
    let during = cas(&cloud.fleet);
    assert_eq!(during.len(), 2, "{during:?}");
    assert_eq!(during[1], before[0]);
    // The connected agent gets a certificate from the new CA (no re-join).
    let renewed = poll(Duration::from_secs(40), || {
        let i = issuer(&node_crt);
        i.contains(&during[0]).then_some(i)
    });
    assert!(
        renewed.is_some(),
        "the agent kept a certificate from the old CA:\n{}\n{}",
        a.log(),
        cloud.hub.log()
    );
    cloud.wait_ready(&mut a);

    // Retire the old CA (the admin.conf the hub rewrote carries both, then the new one).
    cloud.fleet.ok(&["ca", "retire-old"]);
    assert_eq!(cas(&cloud.fleet), vec![during[0].clone()]);
    let conf2 = cloud.hub.admin_conf();
    assert_ne!(conf2.ca, Some(ca.clone()));
    // alice's certificate is from the old CA: refused now.
    assert!(!alice.run(&["get", "nodes"]).status.success());

    // The agent still connects after a restart.
    a.kill();
    let sessions = cloud
        .hub
        .log()
        .matches("node edge-r: session started")
        .count();
    a.run(AGENT_ARGS);
    let again = poll(Duration::from_secs(30), || {
        (cloud
            .hub
            .log()
            .matches("node edge-r: session started")
            .count()
            > sessions)
            .then_some(())
    });
    assert!(
        again.is_some(),
        "no new session after the restart:\n{}\n{}",
        a.log(),
        cloud.hub.log()
    );
    cloud.wait_ready(&mut a);
}
