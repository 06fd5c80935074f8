//! `get KIND [NAME] [-n NS|-A] [-o json|yaml|wide]` and `describe KIND NAME`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use barge_edge_proto::object::Kind;
use serde_json::Value;

use crate::client::Client;
use crate::resources::{collection, item, parse_kind};
use crate::table::{age, print};

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = match cur.get(p) {
            Some(c) => c,
            None => return "",
        };
    }
    cur.as_str().unwrap_or("")
}

fn labels_text(v: &Value) -> String {
    let l: BTreeMap<String, String> = v
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    if l.is_empty() {
        return "<none>".into();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn created(v: &Value) -> String {
    let t = s(v, &["metadata", "creationTimestamp"]);
    age((!t.is_empty()).then_some(t))
}

/// Ready / NotReady / Unknown, plus SchedulingDisabled.
pub fn node_status(n: &Value) -> String {
    let ready = n
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| s(c, &["type"]) == "Ready"))
        .map(|c| s(c, &["status"]).to_string())
        .unwrap_or_default();
    let mut out = match ready.as_str() {
        "True" => "Ready".to_string(),
        "False" => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if n.get("status")
        .and_then(|s| s.get("revoked"))
        .is_some_and(|r| !r.is_null())
    {
        out.push_str(",Revoked");
    }
    if n.get("spec").and_then(|s| s.get("unschedulable")) == Some(&Value::Bool(true)) {
        out.push_str(",SchedulingDisabled");
    }
    out
}

fn restarts(p: &Value) -> u64 {
    p.get("status")
        .and_then(|s| s.get("containerStatuses"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0)
}

fn owner(p: &Value) -> &str {
    s(p, &["metadata", "labels", "barge.io/owner"])
}

fn rows(
    kind: Kind,
    items: &[Value],
    pods: &[Value],
    wide: bool,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let ns = |v: &Value| s(v, &["metadata", "namespace"]).to_string();
    let name = |v: &Value| s(v, &["metadata", "name"]).to_string();
    let count = |v: &Value, field: &str| -> String {
        v.get(field)
            .and_then(Value::as_object)
            .map(|m| m.len())
            .unwrap_or(0)
            .to_string()
    };
    let running = |o: &str| -> usize {
        pods.iter()
            .filter(|p| owner(p) == o && s(p, &["status", "phase"]) == "Running")
            .count()
    };
    let total = |o: &str| -> usize { pods.iter().filter(|p| owner(p) == o).count() };
    match kind {
        Kind::Node => {
            let mut h = vec!["NAME", "STATUS", "LABELS", "AGE", "VERSION"];
            if wide {
                h.extend(["ARCH", "KERNEL", "CPUS", "HUB"]);
            }
            let r = items
                .iter()
                .map(|n| {
                    let mut r = vec![
                        name(n),
                        node_status(n),
                        labels_text(n),
                        created(n),
                        s(n, &["status", "nodeInfo", "agentVersion"]).to_string(),
                    ];
                    if wide {
                        r.push(s(n, &["status", "nodeInfo", "architecture"]).to_string());
                        r.push(s(n, &["status", "nodeInfo", "kernelVersion"]).to_string());
                        r.push(
                            n.pointer("/status/nodeInfo/cpus")
                                .map(|c| c.to_string())
                                .unwrap_or_default(),
                        );
                        r.push(s(n, &["status", "hub"]).to_string());
                    }
                    r
                })
                .collect();
            (h, r)
        }
        Kind::Pod => {
            let mut h = vec!["NAMESPACE", "NAME", "NODE", "PHASE", "RESTARTS", "AGE"];
            if wide {
                h.extend(["IP", "MESSAGE"]);
            }
            let r = items
                .iter()
                .map(|p| {
                    let node = s(p, &["spec", "nodeName"]);
                    let mut r = vec![
                        ns(p),
                        name(p),
                        if node.is_empty() {
                            "<none>".into()
                        } else {
                            node.to_string()
                        },
                        s(p, &["status", "phase"]).to_string(),
                        restarts(p).to_string(),
                        created(p),
                    ];
                    if wide {
                        r.push(s(p, &["status", "podIp"]).to_string());
                        r.push(s(p, &["status", "message"]).to_string());
                    }
                    r
                })
                .collect();
            (h, r)
        }
        Kind::Deployment => {
            let h = vec!["NAMESPACE", "NAME", "READY", "AGE"];
            let r = items
                .iter()
                .map(|d| {
                    let want = d
                        .pointer("/spec/replicas")
                        .and_then(Value::as_u64)
                        .unwrap_or(1);
                    let o = format!("Deployment/{}", name(d));
                    vec![
                        ns(d),
                        name(d),
                        format!("{}/{want}", running(&o)),
                        created(d),
                    ]
                })
                .collect();
            (h, r)
        }
        Kind::DaemonSet => {
            let h = vec!["NAMESPACE", "NAME", "READY", "AGE"];
            let r = items
                .iter()
                .map(|d| {
                    let o = format!("DaemonSet/{}", name(d));
                    vec![
                        ns(d),
                        name(d),
                        format!("{}/{}", running(&o), total(&o)),
                        created(d),
                    ]
                })
                .collect();
            (h, r)
        }
        Kind::ConfigMap => (
            vec!["NAMESPACE", "NAME", "DATA", "AGE"],
            items
                .iter()
                .map(|c| vec![ns(c), name(c), count(c, "data"), created(c)])
                .collect(),
        ),
        Kind::Secret => (
            vec!["NAMESPACE", "NAME", "TYPE", "DATA", "AGE"],
            items
                .iter()
                .map(|c| {
                    let t = s(c, &["type"]);
                    vec![
                        ns(c),
                        name(c),
                        if t.is_empty() {
                            "Opaque".into()
                        } else {
                            t.to_string()
                        },
                        count(c, "data"),
                        created(c),
                    ]
                })
                .collect(),
        ),
        Kind::DeviceModel => (
            vec!["NAMESPACE", "NAME", "PROTOCOL", "PROPERTIES", "AGE"],
            items
                .iter()
                .map(|m| {
                    let props = m
                        .pointer("/spec/properties")
                        .and_then(Value::as_array)
                        .map(|a| a.len())
                        .unwrap_or(0);
                    vec![
                        ns(m),
                        name(m),
                        s(m, &["spec", "protocol"]).to_string(),
                        props.to_string(),
                        created(m),
                    ]
                })
                .collect(),
        ),
        Kind::Device => {
            let mut h = vec!["NAMESPACE", "NAME", "NODE", "MODEL", "STATE", "TWINS"];
            if wide {
                h.extend(["PROTOCOL", "LAST ONLINE", "AGE"]);
            }
            let r = items
                .iter()
                .map(|d| {
                    let mut r = vec![
                        ns(d),
                        name(d),
                        s(d, &["spec", "nodeName"]).to_string(),
                        s(d, &["spec", "deviceModelRef", "name"]).to_string(),
                        crate::device::state_cell(d),
                        crate::device::twins_cell(d),
                    ];
                    if wide {
                        r.push(s(d, &["spec", "protocol", "protocolName"]).to_string());
                        r.push(s(d, &["status", "lastOnlineTime"]).to_string());
                        r.push(created(d));
                    }
                    r
                })
                .collect();
            (h, r)
        }
    }
}

pub fn print_value(v: &Value, format: &str) -> anyhow::Result<()> {
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(v).context("encode JSON")?
        ),
        "yaml" => print!("{}", serde_yaml::to_string(v).context("encode YAML")?),
        other => anyhow::bail!("unknown output format {other:?} (json, yaml or wide)"),
    }
    Ok(())
}

pub async fn get(
    c: &Client,
    kind: &str,
    name: Option<&str>,
    ns: Option<&str>,
    all: bool,
    output: Option<&str>,
) -> anyhow::Result<()> {
    let k = parse_kind(kind).map_err(|e| anyhow::anyhow!("get {kind}: {e}"))?;
    let namespace = ns.unwrap_or("default");
    let what = match name {
        Some(n) => format!("get {} {n}", k.plural()),
        None => format!("get {}", k.plural()),
    };
    let v = match name {
        Some(n) => c.get(&item(k, namespace, n)).await,
        None => {
            c.get(&collection(k, if all { None } else { Some(namespace) }))
                .await
        }
    }
    .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let wide = match output {
        Some("wide") => true,
        Some(f) => return print_value(&v, f),
        None => false,
    };
    let items: Vec<Value> = match name {
        Some(_) => vec![v],
        None => v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    let pods = if matches!(k, Kind::Deployment | Kind::DaemonSet) {
        let p = c
            .get(&collection(
                Kind::Pod,
                if all { None } else { Some(namespace) },
            ))
            .await
            .map_err(|e| anyhow::anyhow!("{what}: list pods: {e}"))?;
        p.get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if items.is_empty() {
        eprintln!("No resources found.");
        return Ok(());
    }
    let (h, r) = rows(k, &items, &pods, wide);
    print(&h, &r);
    Ok(())
}

type PodFilter = Box<dyn Fn(&Value) -> bool>;

pub async fn describe(c: &Client, kind: &str, name: &str, ns: Option<&str>) -> anyhow::Result<()> {
    let k = parse_kind(kind).map_err(|e| anyhow::anyhow!("describe {kind} {name}: {e}"))?;
    let namespace = ns.unwrap_or("default");
    let what = format!("describe {} {name}", k.plural());
    let v = c
        .get(&item(k, namespace, name))
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let meta = |f: &str| s(&v, &["metadata", f]).to_string();
    println!("Name:              {}", meta("name"));
    if k.namespaced() {
        println!("Namespace:         {}", meta("namespace"));
    }
    println!("Kind:              {}", k.as_str());
    println!("Labels:            {}", labels_text(&v));
    let ann = v
        .pointer("/metadata/annotations")
        .and_then(Value::as_object);
    if let Some(a) = ann {
        let t: Vec<String> = a
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        println!("Annotations:       {}", t.join(","));
    }
    println!(
        "CreationTimestamp: {} ({} ago)",
        meta("creationTimestamp"),
        created(&v)
    );
    println!("ResourceVersion:   {}", meta("resourceVersion"));
    if k == Kind::Node {
        println!("Status:            {}", node_status(&v));
    }
    let section = |title: &str, val: Option<&Value>| -> anyhow::Result<()> {
        if let Some(x) = val.filter(|x| !x.is_null()) {
            println!("{title}:");
            let y = serde_yaml::to_string(x).context("encode YAML")?;
            for l in y.lines() {
                println!("  {l}");
            }
        }
        Ok(())
    };
    section("Spec", v.get("spec"))?;
    if k == Kind::Secret {
        if let Some(d) = v.get("data").and_then(Value::as_object) {
            println!("Data:");
            for (key, val) in d {
                let n = val.as_str().map(|b| b.len() * 3 / 4).unwrap_or(0);
                println!("  {key}: ~{n} bytes");
            }
        }
    } else {
        section("Data", v.get("data"))?;
    }
    if k == Kind::Device {
        crate::device::describe(&v);
    } else {
        section("Status", v.get("status"))?;
    }
    // The pods a node runs, or a workload's pods.
    let filter: Option<PodFilter> = match k {
        Kind::Node => {
            let n = name.to_string();
            Some(Box::new(move |p: &Value| s(p, &["spec", "nodeName"]) == n))
        }
        Kind::Deployment | Kind::DaemonSet => {
            let o = format!("{}/{name}", k.as_str());
            Some(Box::new(move |p: &Value| owner(p) == o))
        }
        _ => None,
    };
    if let Some(f) = filter {
        let scope = if k == Kind::Node {
            None
        } else {
            Some(namespace)
        };
        let p = c
            .get(&collection(Kind::Pod, scope))
            .await
            .map_err(|e| anyhow::anyhow!("{what}: list pods: {e}"))?;
        let pods: Vec<Value> = p
            .get("items")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter(|x| f(x)).cloned().collect())
            .unwrap_or_default();
        println!("Pods:");
        if pods.is_empty() {
            println!("  <none>");
        }
        for p in &pods {
            println!(
                "  {}/{}  node={}  phase={}  restarts={}",
                s(p, &["metadata", "namespace"]),
                s(p, &["metadata", "name"]),
                s(p, &["spec", "nodeName"]),
                s(p, &["status", "phase"]),
                restarts(p)
            );
        }
    }
    Ok(())
}
