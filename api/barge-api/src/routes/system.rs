//! `/_ping`, `/version`, `/info` and friends.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use axum::extract::State;

use crate::error::{ApiError, ApiResult};
use crate::routes::params::Params;
use crate::state::{engine, AppState};
use crate::version::{API_VERSION, MIN_API_VERSION};

pub fn routes() -> Router<AppState> {
    let r = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(df))
        .route("/events", get(events));
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

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// `GET /info`: docker's system information.
async fn info(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let hosts = s.info.hosts.clone();
    s.blocking(move |e| {
        let listed = engine(e.list_containers(&barge_engine::list::ListOptions {
            all: true,
            ..Default::default()
        }))?;
        let count = |st: barge_engine::status::State| {
            listed.iter().filter(|l| l.status.state == st).count()
        };
        use barge_engine::status::State as S;
        let running = count(S::Running) + count(S::Restarting);
        let paused = count(S::Paused);
        let images = engine(e.images.db.images().map_err(barge_engine::Error::from))?;
        let mut ids: Vec<String> = images.iter().map(|i| i.config.to_string()).collect();
        ids.sort();
        ids.dedup();
        let uts = nix::sys::utsname::uname().ok();
        let name = uts
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default();
        let machine = uts
            .as_ref()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default();
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(Json(json!({
            "ID": "",
            "Containers": listed.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": listed.len() - running - paused,
            "Images": ids.len(),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": null,
                "Log": ["json-file"],
            },
            "MemoryLimit": true,
            "SwapLimit": false,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "OomKillDisable": false,
            "NGoroutines": 0,
            "SystemTime": barge_util::time::now_rfc3339_nano(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_release(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": [],
                "AllowNondistributableArtifactsHostnames": [],
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {
                    "docker.io": {
                        "Name": "docker.io",
                        "Mirrors": [],
                        "Secure": true,
                        "Official": true,
                    }
                },
                "Mirrors": [],
            },
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "DockerRootDir": e.paths.root,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": name,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": { "barge": { "path": e.opts.shim } },
            "DefaultRuntime": "barge",
            "Swarm": { "LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": "", "Error": "", "RemoteManagers": null },
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": e.opts.init,
            "ContainerdCommit": { "ID": "" },
            "RuncCommit": { "ID": "" },
            "InitCommit": { "ID": "" },
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Hosts": hosts,
            "Warnings": [],
        })))
    })
    .await
}

/// `GET /system/df`: images, containers and volumes with their sizes (the engine's disk
/// usage in docker's shape).
async fn df(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    s.blocking(move |e| {
        let du = engine(e.disk_usage())?;
        Ok(Json(barge_engine::docker::system::df_json(&du)))
    })
    .await
}

/// A docker API time (`1700000000`, `1700000000.5`, RFC 3339) in nanoseconds.
fn event_time(p: &Params, key: &str) -> ApiResult<Option<i64>> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(v) => barge_util::time::parse_timestamp(v)
            .map(|(s, n)| Some(s * 1_000_000_000 + n as i64))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?} (unix seconds or RFC 3339)"
                ))
            }),
    }
}

/// docker's event filters (`type`, `event`, `container`, `image`, `label`, `network`,
/// `volume`); any other key is refused.
fn event_filters(p: &Params) -> ApiResult<barge_engine::events::Filters> {
    let mut f = barge_engine::events::Filters::default();
    for (k, vals) in p.filters()? {
        match k.as_str() {
            "type" => {
                for v in vals {
                    f.types.push(v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid filter type={v:?}"))
                    })?);
                }
            }
            "event" => f.actions.extend(vals),
            "container" => f.containers.extend(vals),
            "image" => f.images.extend(vals),
            "label" => f.labels.extend(vals),
            "network" => f.networks.extend(vals),
            "volume" => f.volumes.extend(vals),
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    Ok(f)
}

/// `GET /events?since=&until=&filters=`: the journal's events as JSON lines, replayed from
/// `since`, then live until `until` or the client goes. A stream holds no thread while it
/// waits (see [`crate::journal_wake`]).
async fn events(State(s): State<AppState>, p: Params) -> ApiResult<axum::response::Response> {
    use barge_engine::events::SubscribeOptions;
    let opts = SubscribeOptions {
        since: event_time(&p, "since")?,
        until: event_time(&p, "until")?,
        filters: event_filters(&p)?,
    };
    let wake = s.journal.waiter(&s.engine)?;
    let sub = s
        .blocking(move |e| engine(e.subscribe_passive(&opts)))
        .await?;
    let body = futures_util::stream::unfold(Some((s, sub, wake)), |st| async move {
        let (s, mut sub, mut wake) = st?;
        loop {
            wake.seen();
            let (back, lines, ended) = s
                .blocking(move |_| {
                    let (lines, ended) = take_events(&mut sub);
                    Ok((sub, lines, ended))
                })
                .await
                .ok()?;
            sub = back;
            if !lines.is_empty() {
                let next = (!ended).then_some((s, sub, wake));
                return Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(lines)),
                    next,
                ));
            }
            if ended {
                return None;
            }
            wake.changed(sub.until_in()).await;
        }
    });
    let mut r = axum::response::Response::new(axum::body::Body::from_stream(body));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// The events that came (at most 256 at a time, as docker's JSON lines), and whether the
/// stream is over (`until` passed, or the journal cannot be read).
fn take_events(sub: &mut barge_engine::events::Subscription) -> (Vec<u8>, bool) {
    use barge_engine::events::Next;
    let mut out = Vec::new();
    for _ in 0..256 {
        match sub.next_timeout(std::time::Duration::ZERO) {
            Ok(Next::Event(ev)) => {
                out.extend_from_slice(ev.to_docker_json().to_string().as_bytes());
                out.push(b'\n');
            }
            Ok(Next::Timeout) => return (out, false),
            Ok(Next::End) | Err(_) => return (out, true),
        }
    }
    (out, false)
}
