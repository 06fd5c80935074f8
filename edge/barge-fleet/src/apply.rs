//! `apply -f FILE` and `delete [KIND NAME | -f FILE]`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use barge_edge_proto::object::Kind;
use hyper::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::Client;
use crate::resources::{display, item, parse_kind};

/// One document of a manifest.
#[derive(Debug, Clone)]
pub struct Doc {
    pub kind: Kind,
    pub name: String,
    pub namespace: String,
    pub body: Value,
}

/// Every object in `text` (JSON, a JSON or YAML `List`, or multi-document YAML), in order.
pub fn parse_manifest(text: &str, source: &str, ns_flag: Option<&str>) -> anyhow::Result<Vec<Doc>> {
    let mut values = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value =
            serde_json::from_str(text).with_context(|| format!("{source}: not valid JSON"))?;
        match v {
            Value::Array(items) => values.extend(items),
            v => values.push(v),
        }
    } else {
        for (i, d) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(d)
                .with_context(|| format!("{source}: YAML document {}", i + 1))?;
            values.push(v);
        }
    }
    let mut out = Vec::new();
    let mut flat = Vec::new();
    for v in values {
        if v.is_null() {
            continue;
        }
        if v.get("kind").and_then(Value::as_str) == Some("List") {
            flat.extend(
                v.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        } else {
            flat.push(v);
        }
    }
    for (i, v) in flat.into_iter().enumerate() {
        let kind_s = v.get("kind").and_then(Value::as_str).unwrap_or("");
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_s)
            .with_context(|| {
                format!("{source}: object {}: kind {kind_s:?} is not one of Pod, Deployment, DaemonSet, ConfigMap, Secret, Node, DeviceModel, Device", i + 1)
            })?;
        let meta = v.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .with_context(|| format!("{source}: object {} ({kind_s}): no metadata.name", i + 1))?
            .to_string();
        let doc_ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str);
        let namespace = match (doc_ns, ns_flag) {
            (Some(d), Some(f)) if d != f && kind.namespaced() => bail!(
                "{source}: {} is in namespace {d:?}, not the -n {f:?} given",
                display(kind, &name)
            ),
            (Some(d), _) => d.to_string(),
            (None, Some(f)) => f.to_string(),
            (None, None) => "default".to_string(),
        };
        out.push(Doc {
            kind,
            name,
            namespace: if kind.namespaced() {
                namespace
            } else {
                String::new()
            },
            body: v,
        });
    }
    Ok(out)
}

fn read_source(path: &Path) -> anyhow::Result<(String, String)> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read stdin")?;
        return Ok((s, "stdin".into()));
    }
    let s = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok((s, path.display().to_string()))
}

fn read_all(files: &[PathBuf], ns: Option<&str>) -> anyhow::Result<Vec<Doc>> {
    let mut docs = Vec::new();
    for f in files {
        let (text, source) = read_source(f)?;
        docs.extend(parse_manifest(&text, &source, ns)?);
    }
    Ok(docs)
}

/// Apply one document; what kubectl would print.
async fn apply_one(c: &Client, d: &Doc) -> Result<String, String> {
    let shown = display(d.kind, &d.name);
    if d.kind == Kind::Node {
        // Nodes come from `barge edge join`: apply sets their labels (and unschedulable).
        let mut patch = json!({});
        if let Some(l) = d.body.get("metadata").and_then(|m| m.get("labels")) {
            patch["metadata"] = json!({ "labels": l });
        }
        if let Some(u) = d.body.get("spec").and_then(|s| s.get("unschedulable")) {
            patch["spec"] = json!({ "unschedulable": u });
        }
        let body = (
            patch.to_string().into_bytes(),
            "application/merge-patch+json",
        );
        let resp = c
            .send(Method::PATCH, &item(d.kind, "", &d.name), Some(body), &[])
            .await
            .map_err(|e| format!("apply {shown}: {e}"))?;
        let code = resp.status();
        if !code.is_success() {
            use http_body_util::BodyExt;
            let b = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(format!(
                "apply {shown}: {}",
                crate::client::status_error(code, &b)
            ));
        }
        return Ok(format!("{shown} configured"));
    }
    let ans = c
        .call(
            Method::PUT,
            &item(d.kind, &d.namespace, &d.name),
            Some(&d.body),
        )
        .await
        .map_err(|e| format!("apply {shown}: {e}"))?;
    let what = ans
        .headers
        .get("barge-result")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if ans.code == hyper::StatusCode::CREATED {
            "created"
        } else {
            "configured"
        })
        .to_string();
    Ok(format!("{shown} {what}"))
}

/// `apply -f FILE...`: data before workloads (ConfigMaps, Secrets, DeviceModels, Devices,
/// then Pods and workloads), otherwise in file order; every object is tried, the exit code is 1 when one
/// failed.
pub async fn apply(c: &Client, ns: Option<&str>, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut docs = read_all(files, ns)?;
    docs.sort_by_key(|d| Kind::ALL.iter().position(|k| *k == d.kind));
    let mut failed = false;
    for d in &docs {
        match apply_one(c, d).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("barge fleet: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `delete KIND NAME` or `delete -f FILE...`.
pub async fn delete(
    c: &Client,
    ns: Option<&str>,
    kind: Option<&str>,
    name: Option<&str>,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let docs: Vec<(Kind, String, String)> = match (kind, name, files.is_empty()) {
        (Some(k), Some(n), true) => {
            let kind = parse_kind(k).map_err(|e| anyhow::anyhow!("delete {k} {n}: {e}"))?;
            vec![(kind, ns.unwrap_or("default").to_string(), n.to_string())]
        }
        (None, None, false) => {
            let mut d = read_all(files, ns)?;
            // Workloads before the data they use.
            d.sort_by_key(|d| std::cmp::Reverse(Kind::ALL.iter().position(|k| *k == d.kind)));
            d.into_iter()
                .map(|d| (d.kind, d.namespace, d.name))
                .collect()
        }
        _ => bail!("delete needs KIND NAME, or -f FILE"),
    };
    let mut failed = false;
    for (kind, ns, name) in docs {
        let shown = display(kind, &name);
        match c.call(Method::DELETE, &item(kind, &ns, &name), None).await {
            Ok(_) => println!("{shown} deleted"),
            Err(e) => {
                eprintln!("barge fleet: delete {} {name}: {e}", kind.plural());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_doc_yaml_and_json() {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n";
        let d = parse_manifest(y, "f", None).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].kind, d[0].namespace.as_str()),
            (Kind::ConfigMap, "default")
        );
        assert_eq!(
            (d[1].kind, d[1].namespace.as_str()),
            (Kind::Deployment, "prod")
        );
        assert!(parse_manifest(y, "f", Some("other")).is_err());
        let j =
            r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}}]}"#;
        let d = parse_manifest(j, "f", Some("x")).unwrap();
        assert_eq!((d[0].kind, d[0].namespace.as_str()), (Kind::Pod, "x"));
        let bad = "kind: Service\nmetadata:\n  name: s\n";
        assert!(parse_manifest(bad, "f", None)
            .unwrap_err()
            .to_string()
            .contains("Service"));
    }
}
