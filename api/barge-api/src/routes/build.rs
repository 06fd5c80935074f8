//! `POST /build`: docker's legacy builder endpoint, on barge's builder (`barge_build`).
//!
//! The request body is the build context as a tar (plain, gzip or zstd), unpacked by the
//! builder's hostile-entry-refusing extractor into a private directory under the daemon's
//! root (`build-contexts/<daemon pid>/`, removed when the build ends; what a killed daemon
//! left is removed by the next build). The query gives `t` (repeatable), `dockerfile`,
//! `buildargs` and `labels` (JSON objects), `target`, `nocache`, `pull`, `q`, `platform`;
//! `rm`/`forcerm` are accepted (build containers are always removed); `X-Registry-Config`
//! carries credentials for pulling base images. The answer is docker's JSON message stream:
//! `{"stream":"Step 1/5 : FROM …\n"}`, RUN output as `stream`, `{"aux":{"ID":…}}`,
//! `Successfully built/tagged`, or `{"errorDetail":{"message":…},"error":…}`.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use barge_build::builder::progress::Sink;
use barge_build::builder::{from_context, BuildOptions};
use barge_build::context::{BuildContext, TarLimits};
use barge_engine::registry::proto::Credentials;
use barge_image::digest::Digest;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::routes::transfer::{body_reader, json_lines, Lines};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/build", post(build))
}

/// Query parameters of dockerd's `/build` that barge refuses rather than ignores when set:
/// they ask for something the builder does not do.
const REFUSED: &[(&str, &str)] = &[
    ("remote", "a remote context (git URL or tarball URL)"),
    ("squash", "squashing layers"),
    ("extrahosts", "extra /etc/hosts entries for RUN"),
    ("cpusetcpus", "CPU limits for RUN"),
    ("cpuquota", "CPU limits for RUN"),
    ("memory", "memory limits for RUN"),
    ("outputs", "BuildKit outputs"),
];

/// The query and headers as builder options: every malformed value is a 400 before the
/// context is read.
fn options(p: &Params, headers: &axum::http::HeaderMap) -> ApiResult<(BuildOptions, bool)> {
    for (key, what) in REFUSED {
        if let Some(v) = p.get(key) {
            let unset = v.is_empty() || v == "0" || v == "false" || v == "[]" || v == "{}";
            if !unset {
                return Err(ApiError::bad_request(format!(
                    "build: {key}={v}: {what} is not supported by barge"
                )));
            }
        }
    }
    if let Some(v) = p.get("version").filter(|v| !v.is_empty() && *v != "1") {
        return Err(ApiError::bad_request(format!(
            "build: version={v}: only the legacy builder (version 1) is served; BuildKit is not"
        )));
    }
    if let Some(v) = p.get("networkmode") {
        if !matches!(v, "" | "default" | "bridge" | "none") {
            return Err(ApiError::bad_request(format!(
                "build: networkmode={v}: RUN uses the default network (or RUN --network=none)"
            )));
        }
    }
    let mut build_args = BTreeMap::new();
    if let Some(raw) = p.get("buildargs").filter(|v| !v.is_empty()) {
        let m: BTreeMap<String, Option<String>> = serde_json::from_str(raw).map_err(|e| {
            ApiError::bad_request(format!(
                "build: buildargs: not a JSON object of strings: {e}"
            ))
        })?;
        // A null value (`--build-arg K` with K unset in the client's environment) is unset.
        build_args.extend(m.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    }
    // BuildKit's SOURCE_DATE_EPOCH build arg: reproducible times, as `barge build` with the
    // environment variable.
    let source_date_epoch = match build_args.remove("SOURCE_DATE_EPOCH") {
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "build: buildargs: SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?),
        None => None,
    };
    let mut labels = Vec::new();
    if let Some(raw) = p.get("labels").filter(|v| !v.is_empty()) {
        let m: BTreeMap<String, String> = serde_json::from_str(raw).map_err(|e| {
            ApiError::bad_request(format!("build: labels: not a JSON object of strings: {e}"))
        })?;
        labels.extend(m);
    }
    let mut tags = Vec::new();
    for t in p.all("t").into_iter().filter(|t| !t.is_empty()) {
        let r = barge_image::reference::ImageRef::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid reference format: {t}: {e}")))?;
        if r.digest().is_some() {
            return Err(ApiError::bad_request(format!(
                "invalid reference format: {t}: a build's name can't contain a digest"
            )));
        }
        tags.push(t.to_string());
    }
    let platform = p.get("platform").filter(|v| !v.is_empty());
    if let Some(pl) = platform {
        barge_image::platform::Platform::parse(pl)
            .map_err(|e| ApiError::bad_request(format!("build: platform={pl}: {e}")))?;
    }
    // Accepted: build containers are always removed, whatever these say.
    p.flag("rm", true)?;
    p.flag("forcerm", false)?;
    let quiet = p.flag("q", false)?;
    let registry_auth = crate::routes::images::registry_config(headers)?
        .into_iter()
        .map(|(server, username, password)| Credentials {
            username,
            password,
            server,
        })
        .collect();
    let opts = BuildOptions {
        tags,
        build_args,
        target: p
            .get("target")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        platform: platform.map(str::to_string),
        no_cache: p.flag("nocache", false)?,
        pull: p.flag("pull", false)?,
        labels,
        source_date_epoch,
        registry_auth,
    };
    Ok((opts, quiet))
}

async fn build(State(s): State<AppState>, p: Params, req: Request) -> ApiResult<Response> {
    let (opts, quiet) = options(&p, req.headers())?;
    let dockerfile = p
        .get("dockerfile")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let reader = body_reader(req.into_body());
    let (lines, resp) = json_lines();
    let engine = s.engine.clone();
    tokio::task::spawn_blocking(move || {
        let contexts = engine.paths.root.join("build-contexts");
        sweep_contexts(&contexts);
        let limits = TarLimits {
            temp_parent: Some(contexts.join(std::process::id().to_string())),
            ..TarLimits::default()
        };
        let mut sink = JsonStream {
            lines: lines.clone(),
            quiet,
        };
        let built = (|| {
            if let Some(dir) = &limits.temp_parent {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("create {}: {e}", dir.display()))?;
            }
            // The context directory goes when `ctx` is dropped, whatever happens.
            let ctx = BuildContext::from_tar(reader, &limits)
                .map_err(|e| format!("the build context: {e}"))?;
            let text = from_context::read_dockerfile(&ctx, dockerfile.as_deref())
                .map_err(|e| e.to_string())?;
            from_context::build_from_context(&engine, &ctx, &text, &opts, &mut sink)
                .map_err(|e| e.to_string())
        })();
        match built {
            Ok(b) => {
                if quiet {
                    lines.send(&json!({"stream": format!("{}\n", b.id)}));
                } else {
                    lines.send(
                        &json!({"stream": format!("Successfully built {}\n", short_id(&b.id))}),
                    );
                    for t in &opts.tags {
                        let name = barge_image::reference::ImageRef::parse(t)
                            .map(|r| barge_engine::docker::image::display_name(&r.canonical()))
                            .unwrap_or_else(|_| t.clone());
                        lines.send(&json!({"stream": format!("Successfully tagged {name}\n")}));
                    }
                }
            }
            Err(msg) => {
                lines.send(&Lines::error_value(&msg));
            }
        }
    });
    Ok(resp)
}

/// Remove what daemons that are gone left in `dir` (one subdirectory per daemon pid: a
/// daemon killed mid-build leaves its context behind). The living daemons' are kept.
fn sweep_contexts(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// docker's 12-hex image ID.
fn short_id(id: &Digest) -> String {
    let s = id.to_string();
    let hex = s.strip_prefix("sha256:").unwrap_or(&s);
    hex.chars().take(12).collect()
}

/// The builder's progress as docker's JSON messages (only the image ID with `q`).
struct JsonStream {
    lines: Lines,
    quiet: bool,
}

impl JsonStream {
    fn stream(&self, text: String) {
        if !self.quiet {
            self.lines.send(&json!({ "stream": text }));
        }
    }
}

impl Sink for JsonStream {
    fn step(&mut self, n: usize, total: usize, _stage: &str, text: &str) {
        self.stream(format!("Step {n}/{total} : {text}\n"));
    }
    fn output(&mut self, bytes: &[u8]) {
        self.stream(String::from_utf8_lossy(bytes).into_owned());
    }
    fn cached(&mut self, _n: usize) {
        self.stream(" ---> Using cache\n".into());
    }
    fn done(&mut self, _n: usize, _secs: f64) {}
    fn note(&mut self, text: &str) {
        self.stream(format!("{text}\n"));
    }
    fn image(&mut self, id: &Digest) {
        self.lines.send(&json!({"aux": {"ID": id.to_string()}}));
    }
    /// A client that went away cancels the build before its next step (as dockerd does).
    fn cancelled(&self) -> bool {
        self.lines.is_closed()
    }
}
