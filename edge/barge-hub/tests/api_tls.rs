//! The fleet API over https (the default) against a real etcd and an in-process hub:
//! admin.conf names the https URL and the CA; the server certificate chains to the fleet CA
//! (and nothing else is trusted); admin client certificates issued from a CSR work for the
//! API and the dashboard; unauthenticated requests, a forged certificate (self-signed, same
//! CN), an expired one, a node certificate and a revoked one are refused with nothing
//! changed; CA rotation and retirement through the API (admin.conf follows).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| CertificateDer::from(p.unwrap().contents))
        .collect()
}

/// A client identity: certificate chain PEM and its key.
struct Id {
    cert_pem: String,
    key: rcgen::KeyPair,
}

fn client_config(ca_pem: &str, id: Option<&Id>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem) {
        roots.add(c).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match id {
        Some(id) => b
            .with_client_auth_cert(
                certs(&id.cert_pem),
                PrivateKeyDer::try_from(id.key.serialize_der()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// One https request: status and body (JSON, or a JSON string).
async fn call(
    h: &TestHub,
    ca_pem: &str,
    id: Option<&Id>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (code, _, bytes) = send(h, ca_pem, id, method, path, headers, body).await;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, v)
}

/// One https request: status, headers and body bytes. A `Value::String` body goes as a form.
async fn send(
    h: &TestHub,
    ca_pem: &str,
    id: Option<&Id>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let tcp = tokio::net::TcpStream::connect(h.started.api_addr)
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(ca_pem, id))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = match body {
        Some(Value::String(form)) => {
            b = b.header("content-type", "application/x-www-form-urlencoded");
            Full::new(Bytes::from(form))
        }
        Some(v) => {
            b = b.header("content-type", "application/json");
            Full::new(Bytes::from(v.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = send.send_request(b.body(body).unwrap()).await.unwrap();
    let code = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, headers, bytes)
}

fn admin_conf(h: &TestHub) -> Value {
    serde_json::from_slice(&std::fs::read(h.state.path().join("admin.conf")).unwrap()).unwrap()
}

async fn tls_hub(etcd: &Etcd) -> TestHub {
    hub(etcd, |c| c.api_insecure_http = false).await
}

/// A key and a CSR for `cn`.
fn csr(cn: &str) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

/// Issue `admin:<name>` through the API with the bearer token.
async fn issue(h: &TestHub, ca: &str, token: &str, name: &str) -> Id {
    let (key, csr) = csr(&format!("admin:{name}"));
    let bearer = format!("Bearer {token}");
    let (code, v) = call(
        h,
        ca,
        None,
        Method::POST,
        "/api/v1/certificates",
        &[("authorization", &bearer)],
        Some(json!({"name": name, "csr": csr})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    Id {
        cert_pem: v["certificate"].as_str().unwrap().to_string(),
        key,
    }
}

async fn configmaps(h: &TestHub, ca: &str, token: &str) -> usize {
    let bearer = format!("Bearer {token}");
    let (code, v) = call(
        h,
        ca,
        None,
        Method::GET,
        "/api/v1/namespaces/default/configmaps",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().len()
}

fn cm(name: &str) -> Value {
    json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name},"data":{"k":"v"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_by_default_with_the_fleet_ca_pinned() {
    let etcd = Etcd::start().await;
    let h = tls_hub(&etcd).await;
    let conf = admin_conf(&h);
    let server = conf["server"].as_str().unwrap();
    assert_eq!(server, format!("https://{}", h.started.api_addr));
    let ca = conf["ca"].as_str().unwrap().to_string();
    assert_eq!(ca, h.ca_pem());
    let token = conf["token"].as_str().unwrap().to_string();

    assert_eq!(configmaps(&h, &ca, &token).await, 0);
    // Unauthenticated: 401.
    let (code, v) = call(&h, &ca, None, Method::GET, "/api/v1/nodes", &[], None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{v}");
    // The server is trusted only through the fleet CA: another CA fails the handshake.
    let (other, _) = barge_hub::pki::new_ca().unwrap();
    let tcp = tokio::net::TcpStream::connect(h.started.api_addr)
        .await
        .unwrap();
    let r = tokio_rustls::TlsConnector::from(client_config(&other, None))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await;
    assert!(
        r.is_err(),
        "a client trusting another CA must not accept the hub"
    );
    // Plain HTTP on the https port gets nothing useful.
    let (code, _) = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(h.started.api_addr)
            .await
            .unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
        (String::from_utf8_lossy(&buf).contains("200 OK"), ())
    };
    assert!(!code, "plain HTTP must not be served on the TLS port");

    // The dashboard's session cookie over https is Secure (never sent over plain HTTP),
    // and it works.
    let form = format!("token={}", token.replace('+', "%2B"));
    let (code, hd, _) = send(
        &h,
        &ca,
        None,
        Method::POST,
        "/ui/login",
        &[],
        Some(Value::String(form)),
    )
    .await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let set = hd.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("; Secure"),
        "{set}"
    );
    let pair = set.split(';').next().unwrap().to_string();
    let (code, v) = call(
        &h,
        &ca,
        None,
        Method::GET,
        "/api/v1/nodes",
        &[("cookie", &pair)],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_certificates_and_what_is_refused() {
    let etcd = Etcd::start().await;
    let h = tls_hub(&etcd).await;
    let conf = admin_conf(&h);
    let ca = conf["ca"].as_str().unwrap().to_string();
    let token = conf["token"].as_str().unwrap().to_string();
    let alice = issue(&h, &ca, &token, "alice").await;

    // Reads with the certificate alone.
    let (code, v) = call(
        &h,
        &ca,
        Some(&alice),
        Method::GET,
        "/api/v1/nodes",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    // A write needs the CSRF header (a browser's cross-site form cannot set it).
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, v) = call(
        &h,
        &ca,
        Some(&alice),
        Method::POST,
        path,
        &[],
        Some(cm("a")),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(configmaps(&h, &ca, &token).await, 0);
    let csrf = [("x-barge-csrf", "1")];
    let (code, v) = call(
        &h,
        &ca,
        Some(&alice),
        Method::POST,
        path,
        &csrf,
        Some(cm("a")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert_eq!(configmaps(&h, &ca, &token).await, 1);
    // The dashboard page too.
    let (code, v) = call(&h, &ca, Some(&alice), Method::GET, "/", &[], None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v.as_str().unwrap().contains("<html"), "{v}");

    // Refused, nothing changed: every one tries to create a ConfigMap and to read nodes.
    let pki = h.started.hub.pki();
    // A node certificate (signed by the fleet CA, CN node:n1): 403.
    let (nkey, ncsr) = csr("node:n1");
    let (ncert, _) = pki
        .sign_node(&ncsr, "n1", Duration::from_secs(600))
        .unwrap();
    let node = Id {
        cert_pem: ncert,
        key: nkey,
    };
    // Forged: self-signed with the same CN as alice.
    let fkey = rcgen::KeyPair::generate().unwrap();
    let mut fp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    fp.distinguished_name = rcgen::DistinguishedName::new();
    fp.distinguished_name
        .push(rcgen::DnType::CommonName, "admin:alice");
    let forged = Id {
        cert_pem: fp.self_signed(&fkey).unwrap().pem(),
        key: fkey,
    };
    // Expired: signed by the fleet CA for alice, valid until now.
    let (ekey, ecsr) = csr("admin:alice");
    let (ecert, _) = pki.sign_admin(&ecsr, "alice", Duration::ZERO).unwrap();
    let expired = Id {
        cert_pem: ecert,
        key: ekey,
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Not issued through the API (the name has no record): 401.
    let (ukey, ucsr) = csr("admin:mallory");
    let (ucert, _) = pki
        .sign_admin(&ucsr, "mallory", Duration::from_secs(600))
        .unwrap();
    let unknown = Id {
        cert_pem: ucert,
        key: ukey,
    };
    let cases: [(&str, Option<&Id>, StatusCode, &str); 5] = [
        ("no credentials", None, StatusCode::UNAUTHORIZED, "missing"),
        (
            "node certificate",
            Some(&node),
            StatusCode::FORBIDDEN,
            "node certificate",
        ),
        (
            "forged certificate",
            Some(&forged),
            StatusCode::UNAUTHORIZED,
            "not signed by the fleet",
        ),
        (
            "expired certificate",
            Some(&expired),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            "unissued name",
            Some(&unknown),
            StatusCode::UNAUTHORIZED,
            "not issued",
        ),
    ];
    for (what, id, want, msg) in cases {
        for (method, p, body) in [
            (Method::GET, "/api/v1/nodes", None),
            (Method::POST, path, Some(cm("bad"))),
            (Method::GET, "/ui/events", None),
        ] {
            let (code, v) = call(&h, &ca, id, method.clone(), p, &csrf, body).await;
            assert_eq!(code, want, "{what}: {method} {p}: {v}");
            let text = v["message"].as_str().unwrap_or_default().to_string();
            assert!(text.contains(msg), "{what}: {method} {p}: {v}");
        }
    }
    assert_eq!(configmaps(&h, &ca, &token).await, 1, "nothing created");

    // Revocation: refused from the next request; the name cannot be issued again.
    let (code, v) = call(
        &h,
        &ca,
        Some(&alice),
        Method::POST,
        "/api/v1/certificates/alice/revoke",
        &csrf,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, v) = call(
        &h,
        &ca,
        Some(&alice),
        Method::GET,
        "/api/v1/nodes",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["message"].as_str().unwrap().contains("revoked"), "{v}");
    let (_, acsr) = csr("admin:alice");
    let bearer = format!("Bearer {token}");
    let (code, v) = call(
        &h,
        &ca,
        None,
        Method::POST,
        "/api/v1/certificates",
        &[("authorization", &bearer)],
        Some(json!({"name": "alice", "csr": acsr})),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    // A CSR whose CN is not admin:<name> is refused.
    let (_, bcsr) = csr("node:bob");
    let (code, v) = call(
        &h,
        &ca,
        None,
        Method::POST,
        "/api/v1/certificates",
        &[("authorization", &bearer)],
        Some(json!({"name": "bob", "csr": bcsr})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let (code, v) = call(
        &h,
        &ca,
        None,
        Method::GET,
        "/api/v1/certificates",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"], "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_through_the_api() {
    let etcd = Etcd::start().await;
    let h = tls_hub(&etcd).await;
    let conf = admin_conf(&h);
    let ca1 = conf["ca"].as_str().unwrap().to_string();
    let token = conf["token"].as_str().unwrap().to_string();
    let old_admin = issue(&h, &ca1, &token, "old").await;
    let csrf = [("x-barge-csrf", "1")];

    let (code, v) = call(
        &h,
        &ca1,
        Some(&old_admin),
        Method::GET,
        "/api/v1/ca",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["rotating"], false);

    let (code, v) = call(
        &h,
        &ca1,
        Some(&old_admin),
        Method::POST,
        "/api/v1/ca/rotate",
        &csrf,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["items"][0]["signsCertificates"], true);
    assert_eq!(v["items"][1]["signsServers"], true);
    // A second rotation while one is in progress: 409.
    let (code, v) = call(
        &h,
        &ca1,
        Some(&old_admin),
        Method::POST,
        "/api/v1/ca/rotate",
        &csrf,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    // admin.conf carries both CAs now; the old admin certificate still works (both trusted).
    let bundle = admin_conf(&h)["ca"].as_str().unwrap().to_string();
    assert_eq!(certs(&bundle).len(), 2);
    let (code, _) = call(
        &h,
        &bundle,
        Some(&old_admin),
        Method::GET,
        "/api/v1/nodes",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let new_admin = issue(&h, &bundle, &token, "new").await;

    let (code, v) = call(
        &h,
        &bundle,
        Some(&new_admin),
        Method::POST,
        "/api/v1/ca/retire-old",
        &csrf,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let ca2 = admin_conf(&h)["ca"].as_str().unwrap().to_string();
    assert_eq!(certs(&ca2).len(), 1);
    assert_ne!(ca2, ca1);
    // The server now chains to the new CA only; the old admin certificate is refused, the new works.
    let (code, v) = call(
        &h,
        &ca2,
        Some(&old_admin),
        Method::GET,
        "/api/v1/nodes",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{v}");
    let (code, v) = call(
        &h,
        &ca2,
        Some(&new_admin),
        Method::GET,
        "/api/v1/nodes",
        &[],
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, v) = call(
        &h,
        &ca2,
        Some(&new_admin),
        Method::POST,
        "/api/v1/ca/retire-old",
        &csrf,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
}
