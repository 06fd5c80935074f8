//! The fleet dashboard's authentication against a real etcd, through a real HTTP client:
//! nothing without the admin token or a session; the login form's cookie (HttpOnly,
//! SameSite=Strict, stored in etcd only as a hash); forged cookies, missing CSRF headers and
//! logged-out sessions refused; no fleet data in any refusal.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::json;

const P: &str = "/dash/";

/// One request with extra headers; status, headers, body text.
async fn req(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = client
        .request(b.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let code = resp.status();
    let h = resp.headers().clone();
    // Event streams never end: read the first chunk only.
    let mut body = resp.into_body();
    let mut text = Vec::new();
    if h.get("content-type")
        .is_some_and(|v| v == "text/event-stream")
    {
        let f = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.extend_from_slice(f.data_ref().unwrap());
    } else {
        text = body.collect().await.unwrap().to_bytes().to_vec();
    }
    (code, h, String::from_utf8_lossy(&text).into_owned())
}

fn location(h: &HeaderMap) -> &str {
    h.get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_dashboard_needs_a_login_and_refuses_forged_sessions() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (hub, url, token) = hub_api(&etcd, P, dir.path()).await;
    // A node whose name must never leak to the unauthenticated.
    let node = json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"secret-node-7"}});
    let mut c = hub.etcd.clone();
    etcd_put(&mut c, &format!("{P}objects/nodes//secret-node-7"), &node).await;

    // No credentials: pages redirect to the login form, the rest is 401; nothing leaks.
    for path in ["/", "/ui/", "/ui/nodes/secret-node-7/pods/default/p/log"] {
        let (code, h, body) = req(Method::GET, &format!("{url}{path}"), &[], "").await;
        assert_eq!(code, StatusCode::SEE_OTHER, "{path}: {body}");
        assert_eq!(location(&h), "/ui/login", "{path}");
        assert!(!body.contains("secret-node-7"), "{path}: {body}");
    }
    for path in [
        "/ui/events",
        "/ui/assets/app.js",
        "/api/v1/nodes",
        "/apis/devices.kubeedge.io/v1beta1/devices",
    ] {
        let (code, _, body) = req(Method::GET, &format!("{url}{path}"), &[], "").await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(!body.contains("secret-node-7"), "{path}: {body}");
    }
    // The login form is the only page without auth.
    let (code, _, body) = req(Method::GET, &format!("{url}/ui/login"), &[], "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("name=token"), "{body}");

    // A wrong token: the form again with an error, no cookie.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (code, h, body) = req(
        Method::POST,
        &format!("{url}/ui/login"),
        &form,
        "token=nope",
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert!(h.get("set-cookie").is_none(), "{h:?}");
    assert!(body.contains("wrong token"), "{body}");
    assert!(!body.contains("secret-node-7"));

    // Forged cookies (well-formed and not) are refused everywhere.
    let forged = format!("barge_session={}", "ab".repeat(32));
    for cookie in [forged.as_str(), "barge_session=x", "barge_session="] {
        let hdr = [("cookie", cookie)];
        let (code, h, _) = req(Method::GET, &format!("{url}/"), &hdr, "").await;
        assert_eq!(
            (code, location(&h)),
            (StatusCode::SEE_OTHER, "/ui/login"),
            "{cookie}"
        );
        let (code, _, body) = req(Method::GET, &format!("{url}/ui/events"), &hdr, "").await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{cookie}: {body}");
        let (code, _, body) = req(Method::GET, &format!("{url}/api/v1/nodes"), &hdr, "").await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{cookie}: {body}");
        assert!(!body.contains("secret-node-7"));
    }

    // The right token: a session cookie, HttpOnly and SameSite=Strict, kept in etcd as a
    // hash only.
    let body = format!("token={}", token.replace('+', "%2B"));
    let (code, h, _) = req(Method::POST, &format!("{url}/ui/login"), &form, &body).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(location(&h), "/");
    let set = h.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    // Plain HTTP (--api-insecure-http): not Secure, or the browser would drop it.
    assert!(!set.contains("Secure"), "{set}");
    let id = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("barge_session=")
        .unwrap()
        .to_string();
    let stored = c
        .get(
            format!("{P}ui/sessions/"),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert_eq!(stored.kvs().len(), 1);
    let key = String::from_utf8_lossy(stored.kvs()[0].key()).into_owned();
    assert!(!key.contains(&id), "the session id itself is stored: {key}");
    assert!(stored.kvs()[0].lease() != 0, "the session has no lease TTL");

    let cookie = format!("barge_session={id}");
    let hdr = [("cookie", cookie.as_str())];
    let (code, _, page) = req(Method::GET, &format!("{url}/"), &hdr, "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(page.contains("secret-node-7"), "{page}");
    let (code, _, ev) = req(Method::GET, &format!("{url}/ui/events"), &hdr, "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        ev.starts_with("event: fleet\n") && ev.contains("secret-node-7"),
        "{ev}"
    );
    let (code, _, _) = req(Method::GET, &format!("{url}/api/v1/nodes"), &hdr, "").await;
    assert_eq!(code, StatusCode::OK);
    // The bearer token works for the page as well.
    let bearer = format!("Bearer {token}");
    let (code, _, _) = req(
        Method::GET,
        &format!("{url}/"),
        &[("authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // A state-changing request with the cookie but without the page's CSRF header: 403,
    // nothing written.
    let patch = r#"{"metadata":{"labels":{"x":"y"}}}"#;
    let (code, _, body) = req(
        Method::PATCH,
        &format!("{url}/api/v1/nodes/secret-node-7"),
        &[
            ("cookie", &cookie),
            ("content-type", "application/merge-patch+json"),
        ],
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let page_csrf = page
        .split("<meta name=csrf content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let (code, _, body) = req(
        Method::PATCH,
        &format!("{url}/api/v1/nodes/secret-node-7"),
        &[
            ("cookie", &cookie),
            ("x-barge-csrf", "0".repeat(64).as_str()),
        ],
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (_, _, n) = req(
        Method::GET,
        &format!("{url}/api/v1/nodes/secret-node-7"),
        &[("authorization", &bearer)],
        "",
    )
    .await;
    assert!(
        !n.contains("\"x\":\"y\""),
        "a refused patch was applied: {n}"
    );
    // With the page's token it goes through.
    let (code, _, body) = req(
        Method::PATCH,
        &format!("{url}/api/v1/nodes/secret-node-7"),
        &[("cookie", &cookie), ("x-barge-csrf", &page_csrf)],
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // Logout without the page's csrf field is refused; with it the session is gone
    // everywhere (the key is deleted).
    let (code, _, _) = req(
        Method::POST,
        &format!("{url}/ui/logout"),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, h, _) = req(
        Method::POST,
        &format!("{url}/ui/logout"),
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={page_csrf}"),
    )
    .await;
    assert_eq!((code, location(&h)), (StatusCode::SEE_OTHER, "/ui/login"));
    assert!(h
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (code, _, _) = req(Method::GET, &format!("{url}/api/v1/nodes"), &hdr, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, h, _) = req(Method::GET, &format!("{url}/"), &hdr, "").await;
    assert_eq!((code, location(&h)), (StatusCode::SEE_OTHER, "/ui/login"));
}
