//! Kinds as the CLI names them and their API paths.

use barge_edge_proto::object::Kind;

/// `deployments` -> Deployment, accepting kubectl's names and short names.
pub fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::parse(s).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown kind {s:?} (nodes, pods, deployments, daemonsets, configmaps, secrets, devicemodels, devices)"
        )
    })
}

fn group(kind: Kind) -> &'static str {
    match kind.api_version() {
        "v1" => "/api/v1",
        "apps/v1" => "/apis/apps/v1",
        _ => "/apis/devices.kubeedge.io/v1beta1",
    }
}

/// The list path: one namespace, or every namespace when `ns` is None.
pub fn collection(kind: Kind, ns: Option<&str>) -> String {
    match (kind, ns) {
        (Kind::Node, _) => "/api/v1/nodes".into(),
        (_, Some(ns)) => format!("{}/namespaces/{ns}/{}", group(kind), kind.plural()),
        (_, None) => format!("{}/{}", group(kind), kind.plural()),
    }
}

/// One object's path.
pub fn item(kind: Kind, ns: &str, name: &str) -> String {
    match kind {
        Kind::Node => format!("/api/v1/nodes/{name}"),
        _ => format!("{}/namespaces/{ns}/{}/{name}", group(kind), kind.plural()),
    }
}

/// `deployment.apps/web`, `pod/x`: how kubectl names an object in its messages.
pub fn display(kind: Kind, name: &str) -> String {
    let k = kind.as_str().to_ascii_lowercase();
    if kind.api_version() == "apps/v1" {
        format!("{k}.apps/{name}")
    } else {
        format!("{k}/{name}")
    }
}
