//! `/networks`: list (filters), inspect, create (bridge networks: IPAM subnets and gateways,
//! internal, labels; 409 on a taken name), connect/disconnect (aliases, fixed addresses),
//! remove, prune. barge's default network (`barge`) answers to docker's name `bridge` too;
//! `host` and `none` are listed as docker lists them.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use barge_engine::config::Endpoint;
use barge_engine::network::store::{CreateRequest, Network, DEFAULT_NETWORK};
use barge_engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::params::{json_body, Params};
use crate::server::status;
use crate::state::{engine, AppState};
use barge_engine::filters::label_matches;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// docker's names for barge's networks.
fn engine_name(key: &str) -> &str {
    if key == "bridge" {
        DEFAULT_NETWORK
    } else {
        key
    }
}

/// Every network as docker documents: barge's and CNI lists, then `host` and `none`.
fn all_networks(e: &Engine) -> ApiResult<Vec<Value>> {
    let nets = engine(e.networks().list())?;
    let mut out = Vec::new();
    if !nets.iter().any(Network::is_default) {
        // Listed before its first use too, as docker always lists `bridge`.
        let n = engine(e.networks().ensure_default())?;
        out.push(engine(barge_engine::docker::network::network(e, &n))?);
    }
    for n in &nets {
        out.push(engine(barge_engine::docker::network::network(e, n))?);
    }
    out.push(barge_engine::docker::network::pseudo_network("host"));
    out.push(barge_engine::docker::network::pseudo_network("none"));
    Ok(out)
}

fn builtin(v: &Value) -> bool {
    matches!(v["Name"].as_str(), Some("host" | "none" | DEFAULT_NETWORK))
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["Labels"].clone()).unwrap_or_default()
}

fn filter_match(key: &str, vals: &[String], v: &Value) -> ApiResult<bool> {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    Ok(match key {
        "name" => vals.iter().any(|n| s("Name").contains(n.as_str())),
        "id" => vals.iter().any(|n| s("Id").starts_with(n.as_str())),
        "driver" => vals.iter().any(|d| *d == s("Driver")),
        "scope" => vals.iter().any(|d| d == "local"),
        "label" => {
            let l = labels_of(v);
            vals.iter().all(|w| label_matches(w, &l))
        }
        "type" => vals.iter().any(|t| match t.as_str() {
            "custom" => !builtin(v),
            "builtin" => builtin(v),
            _ => false,
        }),
        "dangling" => {
            let empty = v["Containers"].as_object().is_none_or(|m| m.is_empty());
            vals.iter().any(|d| match d.as_str() {
                "true" | "1" => empty && !builtin(v),
                "false" | "0" => !empty || builtin(v),
                _ => false,
            })
        }
        other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
    })
}

async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = p.filters()?;
    let nets = s
        .blocking(move |e| {
            let mut out = Vec::new();
            for v in all_networks(e)? {
                let mut keep = true;
                for (k, vals) in &filters {
                    keep &= filter_match(k, vals, &v)?;
                }
                if keep {
                    out.push(v);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(nets).into_response())
}

async fn inspect(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let doc = s
        .blocking(move |e| {
            if matches!(id.as_str(), "host" | "none") {
                return Ok(barge_engine::docker::network::pseudo_network(&id));
            }
            let found = e.networks().get(engine_name(&id));
            let n = match found {
                Ok(n) => n,
                Err(barge_engine::Error::NoSuchNetwork(_)) => {
                    // The pseudo networks by id.
                    for name in ["host", "none"] {
                        if barge_engine::docker::network::pseudo_id(name).starts_with(&id) {
                            return Ok(barge_engine::docker::network::pseudo_network(name));
                        }
                    }
                    return Err(ApiError::not_found(format!("network {id} not found")));
                }
                Err(err) => return Err(err.into()),
            };
            engine(barge_engine::docker::network::network(e, &n))
        })
        .await?;
    Ok(Json(doc).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct IpamConfig {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Ipam {
    driver: String,
    config: Option<Vec<IpamConfig>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    check_duplicate: Option<bool>,
    driver: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_only: bool,
    config_from: Option<Value>,
    scope: String,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "EnableIPv4")]
    enable_ipv4: Option<bool>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// The create request as the engine takes it; what barge cannot honour is refused.
fn create_request(b: CreateBody) -> ApiResult<CreateRequest> {
    let bad = |m: String| Err(ApiError::bad_request(m));
    if b.name.is_empty() {
        return bad("network create: Name is required".into());
    }
    if !matches!(b.driver.as_str(), "" | "bridge") {
        return bad(format!(
            "network create: driver {:?} is not supported (barge makes bridge networks)",
            b.driver
        ));
    }
    if b.ingress || b.config_only || b.config_from.as_ref().is_some_and(|v| !v.is_null()) {
        return bad("network create: Ingress, ConfigOnly and ConfigFrom are swarm features barge does not have".into());
    }
    if !matches!(b.scope.as_str(), "" | "local") {
        return bad(format!(
            "network create: scope {:?} is not supported (only local)",
            b.scope
        ));
    }
    if b.enable_ipv4 == Some(false) {
        return bad("network create: EnableIPv4=false is not supported".into());
    }
    let _ = (b.check_duplicate, b.attachable);
    let mut req = CreateRequest {
        name: b.name,
        driver: "bridge".into(),
        ipv6: b.enable_ipv6.unwrap_or(false),
        internal: b.internal,
        labels: b.labels.unwrap_or_default(),
        ..Default::default()
    };
    for (k, v) in b.options.unwrap_or_default() {
        match k.as_str() {
            "com.docker.network.bridge.name" => req.bridge = Some(v),
            // What compose and the CLI send with docker's own defaults is fine.
            "com.docker.network.bridge.enable_ip_masquerade" if v == "true" => {}
            "com.docker.network.bridge.enable_icc" if v == "true" => {}
            "com.docker.network.driver.mtu" if v == "1500" => {}
            _ => return bad(format!("network create: option {k}={v} is not supported")),
        }
    }
    if let Some(ipam) = b.ipam {
        if !matches!(ipam.driver.as_str(), "" | "default") {
            return bad(format!(
                "network create: IPAM driver {:?} is not supported (default only)",
                ipam.driver
            ));
        }
        if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
            return bad("network create: IPAM options are not supported".into());
        }
        let configs = ipam.config.unwrap_or_default();
        let with_gw = configs.iter().any(|c| !c.gateway.is_empty());
        for c in configs {
            if !c.ip_range.is_empty()
                || c.auxiliary_addresses
                    .as_ref()
                    .is_some_and(|a| !a.is_empty())
            {
                return bad(
                    "network create: IPAM IPRange and AuxiliaryAddresses are not supported".into(),
                );
            }
            if c.subnet.is_empty() {
                if !c.gateway.is_empty() {
                    return bad("network create: a Gateway needs its Subnet".into());
                }
                continue;
            }
            req.subnets.push(
                barge_engine::network::subnet::parse_subnet(&c.subnet)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
            if with_gw {
                if c.gateway.is_empty() {
                    return bad(format!(
                        "network create: subnet {}: give every subnet a Gateway or none",
                        c.subnet
                    ));
                }
                req.gateways.push(c.gateway.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "network create: Gateway {:?} is not an IP address",
                        c.gateway
                    ))
                })?);
            }
        }
    }
    Ok(req)
}

async fn create(State(s): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body, "network create")?;
    let req = create_request(b)?;
    let id = s
        .blocking(move |e| {
            if req.name == "bridge" {
                return Err(ApiError::conflict(
                    "network with name bridge already exists (barge's default network)",
                ));
            }
            Ok(engine(e.networks().create(&req))?.id())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))).into_response())
}

async fn remove(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    s.blocking(move |e| {
        if matches!(id.as_str(), "host" | "none" | "bridge") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{id} is a pre-defined network and cannot be removed"),
            ));
        }
        engine(e.network_remove(&id)).map(|_| ())
    })
    .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    links: Option<Vec<String>>,
    mac_address: String,
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
    force: bool,
}

async fn connect(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ConnectBody = json_body(&body, "network connect")?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request(
            "network connect: Container is required",
        ));
    }
    let ep = b.endpoint_config.unwrap_or_default();
    if ep.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::bad_request(
            "network connect: links are not supported; containers on a user network resolve each other by name",
        ));
    }
    if !ep.mac_address.is_empty() || ep.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "network connect: MacAddress and DriverOpts are not supported",
        ));
    }
    let ip = ep.ipam_config.as_ref().and_then(|c| {
        [&c.ipv4_address, &c.ipv6_address]
            .into_iter()
            .find(|a| !a.is_empty())
            .cloned()
    });
    if ep
        .ipam_config
        .as_ref()
        .is_some_and(|c| !c.ipv4_address.is_empty() && !c.ipv6_address.is_empty())
    {
        return Err(ApiError::bad_request(
            "network connect: give an IPv4 or an IPv6 address, not both",
        ));
    }
    let endpoint = Endpoint {
        network: String::new(),
        aliases: ep.aliases.unwrap_or_default(),
        ip,
    };
    s.blocking(move |e| engine(e.network_connect(engine_name(&id), &b.container, endpoint)))
        .await?;
    Ok(status(StatusCode::OK))
}

async fn disconnect(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: ConnectBody = json_body(&body, "network disconnect")?;
    if b.container.is_empty() {
        return Err(ApiError::bad_request(
            "network disconnect: Container is required",
        ));
    }
    let _ = b.force;
    s.blocking(move |e| engine(e.network_disconnect(engine_name(&id), &b.container)))
        .await?;
    Ok(status(StatusCode::OK))
}

async fn prune(State(s): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = engine(barge_engine::filters::Filters::parse_json(
        p.get("filters").unwrap_or(""),
    ))?;
    let report = s
        .blocking(move |e| {
            let f = engine(barge_engine::prune::PruneFilter::new(&filters))?;
            engine(e.prune_networks_matching(&f))
        })
        .await?;
    Ok(Json(json!({"NetworksDeleted": report.deleted})).into_response())
}
