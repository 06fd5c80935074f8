//! `/_ping`, `/version`, `/info` and friends.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::version::{API_VERSION, MIN_API_VERSION};

pub fn routes() -> Router<AppState> {
    let r = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version));
    // A handler that panics, for the test proving one request's panic leaves the daemon up.
    if std::env::var_os("BARGE_DAEMON_TEST_HOOKS").is_some() {
        r.route("/_barge/panic", get(panic_hook))
    } else {
        r
    }
}

async fn ping() -> impl IntoResponse {
    let mut h = HeaderMap::new();
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    h.insert(
        "Content-Type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (h, "OK")
}

/// The kernel's release, as `uname -r` prints it.
pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// docker's name for this machine's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        other => other,
    }
}

async fn version() -> ApiResult<Json<serde_json::Value>> {
    let v = env!("CARGO_PKG_VERSION");
    let kernel = kernel_version();
    Ok(Json(json!({
        "Platform": { "Name": "barge" },
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel,
            }
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    })))
}

async fn panic_hook() -> &'static str {
    panic!("test hook: a handler panicked on purpose")
}
