//! The fleet web dashboard, served on the fleet API's listener (`--api`):
//!
//! - `GET /` (and `/ui/`): the fleet page, server-rendered from the hub's cache
//!   ([`model`], [`html`]); `GET /ui/events`: Server-Sent Events carrying the page's `<main>`
//!   again whenever the cache or the reports ([`live`]) change (coalesced, with a heartbeat
//!   comment); `GET /ui/nodes/{node}/pods/{ns}/{pod}/log`: a log view following the API's log
//!   stream; `GET /ui/assets/{app.js,style.css}`: the page's script and style (embedded).
//! - `GET|POST /ui/login`, `POST /ui/logout`: the session cookie ([`session`]).
//!
//! Everything but `/ui/login` needs the admin token (bearer) or a session cookie; pages
//! redirect to the login form, the rest answers 401.

pub mod html;
pub mod live;
pub mod model;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tokio::sync::watch;

use crate::api::error::ApiError;
use crate::api::{auth, Api};

/// The page's style (also inlined in the login form).
pub const STYLE: &str = include_str!("assets/style.css");
/// The page's script.
pub const SCRIPT: &str = include_str!("assets/app.js");

/// A heartbeat comment goes out after this long without an event.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Changes within this window go out as one event.
const COALESCE: Duration = Duration::from_millis(200);

/// What the dashboard's handlers share.
pub struct Dashboard {
    pub api: Arc<Api>,
    pub live: Arc<live::Live>,
    /// The latest `<main>` (see [`publish`]), shared by every event stream.
    rendered: watch::Sender<Arc<String>>,
}

/// Who is looking: the session id when authenticated by cookie, the admin name when by
/// client certificate (for the CSRF token the page sends back).
#[derive(Clone)]
struct Viewer {
    session: Option<String>,
    cert: Option<String>,
}

impl Viewer {
    fn csrf(&self) -> String {
        match (&self.session, &self.cert) {
            (Some(id), _) => session::csrf_token(id),
            (None, Some(name)) => session::csrf_token(&format!("cert:{name}")),
            (None, None) => String::new(),
        }
    }
}

type S = State<Arc<Dashboard>>;

/// The dashboard's routes (starts the reports' watch).
pub fn router(api: Arc<Api>) -> Router {
    let dash = Arc::new(Dashboard {
        live: live::Live::start(api.etcd.clone(), api.prefix.clone()),
        api,
        rendered: watch::channel(Arc::new(String::new())).0,
    });
    tokio::spawn(publish(dash.clone(), dash.rendered.clone()));
    let authed = Router::new()
        .route("/", get(index))
        .route("/ui/", get(index))
        .route("/ui/events", get(events))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/nodes/{node}/pods/{ns}/{pod}/log", get(log_view))
        .layer(axum::middleware::from_fn_with_state(
            dash.clone(),
            require_viewer,
        ));
    Router::new()
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .merge(authed)
        .with_state(dash)
}

/// The admin bearer token or a session cookie; pages send the unauthenticated to the login
/// form, everything else gets 401.
async fn require_viewer(State(d): S, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = path == "/" || path == "/ui/" || path.starts_with("/ui/nodes/");
    let cert = req.extensions().get::<crate::api::tls::ClientCert>();
    let result = match auth::bearer(&req) {
        Some(token) => match auth::is_admin_token(&d.api, token).await {
            Ok(true) => Ok((None, None)),
            Ok(false) => Err(ApiError::unauthorized(
                "the bearer token is not the fleet's admin token",
            )),
            Err(e) => Err(e),
        },
        None => match auth::cert_admin(&d.api, req.method(), req.headers(), cert).await {
            Ok(Some(name)) => Ok((None, Some(name))),
            Ok(None) => session::check(&d.api, req.method(), req.headers())
                .await
                .map(|s| (Some(s), None)),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok((session, cert)) => {
            req.extensions_mut().insert(Viewer { session, cert });
            next.run(req).await
        }
        Err(e) if is_page && e.code == StatusCode::UNAUTHORIZED => {
            Redirect::to("/ui/login").into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// An HTML response with the page headers (no caching, no framing, scripts from here only).
fn html(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn current(d: &Dashboard) -> model::Fleet {
    model::build(
        &d.api.hub.cache.snapshot(),
        &d.live.reports(),
        d.api.grace_secs(),
        barge_util::time::now().0,
    )
}

async fn index(State(d): S, Extension(v): Extension<Viewer>) -> Response {
    html(StatusCode::OK, html::page(&current(&d), &v.csrf()))
}

async fn log_view(
    Path((node, ns, pod)): Path<(String, String, String)>,
    Extension(v): Extension<Viewer>,
) -> Response {
    html(StatusCode::OK, html::log_page(&node, &ns, &pod, &v.csrf()))
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return ApiError::not_found(format!("no dashboard asset {file}")).into_response(),
    };
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

async fn login_form() -> Response {
    html(StatusCode::OK, html::login(None))
}

/// `POST /ui/login` (form `token=`): a session cookie and the fleet page, or the form again.
async fn login(State(d): S, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let pairs = crate::api::stream::query_pairs(Some(&body));
    let token = pairs
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match auth::is_admin_token(&d.api, token).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("dashboard: login with a wrong token");
            return html(
                StatusCode::UNAUTHORIZED,
                html::login(Some("wrong token: use the token of admin.conf")),
            );
        }
        Err(e) => return html(e.code, html::login(Some(&e.message))),
    }
    match session::create(&d.api).await {
        Ok(id) => {
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
                &id,
                !d.api.hub.config.api_insecure_http,
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => html(e.code, html::login(Some(&e.message))),
    }
}

/// `POST /ui/logout` (form `csrf=`): deletes the session everywhere.
async fn logout(State(d): S, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let pairs = crate::api::stream::query_pairs(Some(&body));
    let sent = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if let Some(id) = session::cookie(&headers) {
        if !auth::ct_eq(sent.as_bytes(), session::csrf_token(&id).as_bytes()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "logout needs the csrf field of the dashboard page",
            )
            .into_response();
        }
        if let Err(e) = session::delete(&d.api, &id).await {
            return e.into_response();
        }
    }
    let mut r = Redirect::to("/ui/login").into_response();
    if let Ok(v) =
        HeaderValue::from_str(&session::clear_cookie(!d.api.hub.config.api_insecure_http))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// One SSE event with `data` split into `data:` lines.
fn sse_event(name: &str, data: &str) -> Bytes {
    let mut s = format!("event: {name}\n");
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line.trim_end_matches('\r'));
        s.push('\n');
    }
    s.push('\n');
    Bytes::from(s)
}

/// Render the page's `<main>` once per change (coalesced) or per second (readiness also
/// changes with time: the grace period) while anyone listens, for every event stream.
async fn publish(dash: Arc<Dashboard>, tx: watch::Sender<Arc<String>>) {
    let mut cache = dash.api.hub.cache.subscribe();
    let mut live = dash.live.subscribe();
    loop {
        tokio::select! {
            _ = cache.changed() => {}
            _ = live.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tokio::time::sleep(COALESCE).await;
        cache.borrow_and_update();
        live.borrow_and_update();
        if tx.receiver_count() == 0 {
            continue;
        }
        let main = html::main(&current(&dash));
        tx.send_if_modified(|cur| {
            if **cur == main {
                false
            } else {
                *cur = Arc::new(main);
                true
            }
        });
    }
}

struct Events {
    rx: watch::Receiver<Arc<String>>,
    first: Option<String>,
    last: Option<Arc<String>>,
}

impl Events {
    /// The next chunk: the page's `<main>` when it changed, else a heartbeat comment.
    async fn next(&mut self) -> Bytes {
        if let Some(main) = self.first.take() {
            return sse_event("fleet", &main);
        }
        loop {
            match tokio::time::timeout(HEARTBEAT, self.rx.changed()).await {
                Err(_) => return Bytes::from_static(b": heartbeat\n\n"),
                Ok(Err(_)) => {
                    // The publisher is gone (the hub is stopping): idle on heartbeats.
                    tokio::time::sleep(HEARTBEAT).await;
                    return Bytes::from_static(b": heartbeat\n\n");
                }
                Ok(Ok(())) => {}
            }
            let main = self.rx.borrow_and_update().clone();
            if self.last.as_ref() != Some(&main) {
                self.last = Some(main.clone());
                return sse_event("fleet", &main);
            }
        }
    }
}

/// `GET /ui/events`: `event: fleet` with the page's `<main>` (first at once, then on change).
async fn events(State(d): S) -> Response {
    let mut rx = d.rendered.subscribe();
    rx.borrow_and_update();
    let first = html::main(&current(&d));
    let ev = Events {
        last: Some(Arc::new(first.clone())),
        first: Some(first),
        rx,
    };
    let stream = futures_util::stream::unfold(ev, |mut ev| async move {
        let b = ev.next().await;
        Some((Ok::<_, std::convert::Infallible>(b), ev))
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
