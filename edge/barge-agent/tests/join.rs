//! `barge-edge join` against a fake hub over real TLS: a token whose CA hash does not match
//! the hub's CA is refused before anything is sent; the right one gets a certificate for a
//! key made on the device (mode 0600, never sent), and the CA bundle and hubs are stored.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use barge_edge_proto::wire::EdgeMsg;
use common::{edge_cmd, FakeHub, TOKEN_CRED};

#[test]
fn join_pins_the_ca_and_keeps_the_key_on_the_device() {
    let hub = FakeHub::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://{}", hub.addr);

    // A token pinning another CA: refused by the agent, nothing stored, nothing sent.
    let other = common::Ca::new("someone else's CA");
    let out = edge_cmd(
        dir.path(),
        &["join", &url, "--token", &other.token(), "--name", "n1"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "join with a wrong pin succeeded");
    assert!(err.contains("no CA with the token's hash"), "{err}");
    assert!(!dir.path().join("root/edge/edge.json").exists());
    assert!(!dir.path().join("root/edge/node.key").exists());
    assert!(
        hub.wait(Duration::from_millis(300), |_| true).is_none(),
        "the agent sent something to a hub it could not verify"
    );

    // A malformed token: a clear error.
    let out = edge_cmd(
        dir.path(),
        &["join", &url, "--token", "K10abc", "--name", "n1"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("join token is malformed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The right pin.
    let out = edge_cmd(
        dir.path(),
        &[
            "join",
            &url,
            "--token",
            &hub.ca.token(),
            "--name",
            "n1",
            "--label",
            "zone=a",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "join failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let join = hub
        .wait(Duration::from_secs(5), |m| {
            matches!(m, EdgeMsg::Join { .. })
        })
        .expect("the hub got no Join");
    let text = serde_json::to_string(&join).unwrap();
    assert!(!text.contains("PRIVATE KEY"), "the key was sent: {text}");
    let EdgeMsg::Join {
        name,
        labels,
        csr_pem,
        token,
        ..
    } = join
    else {
        unreachable!()
    };
    assert_eq!(name, "n1");
    assert_eq!(labels.get("zone").map(String::as_str), Some("a"));
    assert!(token.ends_with(TOKEN_CRED));
    let csr = rcgen::CertificateSigningRequestParams::from_pem(&csr_pem).unwrap();
    let cn = format!(
        "{:?}",
        csr.params
            .distinguished_name
            .get(&rcgen::DnType::CommonName)
    );
    assert!(cn.contains("node:n1"), "{cn}");

    let edge = dir.path().join("root/edge");
    let mode = std::fs::metadata(edge.join("node.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "node.key mode {mode:o}");
    // The stored key is the CSR's key.
    let key = std::fs::read_to_string(edge.join("node.key")).unwrap();
    let kp = rcgen::KeyPair::from_pem(&key).unwrap();
    use rcgen::PublicKeyData;
    assert_eq!(kp.der_bytes(), csr.public_key.der_bytes());
    assert_eq!(
        std::fs::read_to_string(edge.join("ca.pem")).unwrap(),
        hub.ca.pem
    );
    assert!(std::fs::read_to_string(edge.join("node.crt"))
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let ej: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(edge.join("edge.json")).unwrap()).unwrap();
    assert_eq!(ej["name"], "n1");
    assert_eq!(ej["hubs"][0], hub.addr.as_str());
    assert_eq!(ej["labels"]["zone"], "a");
}
