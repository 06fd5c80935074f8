//! `token create`, `node drain|uncordon|label|revoke`.

use anyhow::{anyhow, bail};
use hyper::Method;
use serde_json::{json, Map, Value};

use crate::client::Client;

/// `token create [--ttl D] [--reusable]`: only the token on stdout.
pub async fn token_create(c: &Client, ttl: Option<&str>, reusable: bool) -> anyhow::Result<()> {
    let mut body = json!({ "reusable": reusable });
    if let Some(t) = ttl {
        let secs = crate::table::parse_duration(t).ok_or_else(|| {
            anyhow!("token create: --ttl {t:?} is not a duration (90s, 30m, 1h, 7d)")
        })?;
        body["ttlSeconds"] = json!(secs);
    }
    let v = c
        .call(Method::POST, "/api/v1/tokens", Some(&body))
        .await
        .map_err(|e| anyhow!("token create: {e}"))?
        .json()
        .map_err(|e| anyhow!("token create: {e}"))?;
    let token = v
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("token create: the answer has no token"))?;
    println!("{token}");
    Ok(())
}

async fn patch(c: &Client, verb: &str, name: &str, patch: Value) -> anyhow::Result<()> {
    let body = (
        patch.to_string().into_bytes(),
        "application/merge-patch+json",
    );
    let resp = c
        .send(
            Method::PATCH,
            &format!("/api/v1/nodes/{name}"),
            Some(body),
            &[],
        )
        .await
        .map_err(|e| anyhow!("node {verb} {name}: {e}"))?;
    let code = resp.status();
    if !code.is_success() {
        use http_body_util::BodyExt;
        let b = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        bail!(
            "node {verb} {name}: {}",
            crate::client::status_error(code, &b)
        );
    }
    Ok(())
}

pub async fn drain(c: &Client, name: &str) -> anyhow::Result<()> {
    c.call(Method::POST, &format!("/api/v1/nodes/{name}/drain"), None)
        .await
        .map_err(|e| anyhow!("node drain {name}: {e}"))?;
    println!("node/{name} drained");
    Ok(())
}

pub async fn uncordon(c: &Client, name: &str) -> anyhow::Result<()> {
    patch(
        c,
        "uncordon",
        name,
        json!({"spec": {"unschedulable": false}}),
    )
    .await?;
    println!("node/{name} uncordoned");
    Ok(())
}

pub async fn revoke(c: &Client, name: &str) -> anyhow::Result<()> {
    c.call(Method::POST, &format!("/api/v1/nodes/{name}/revoke"), None)
        .await
        .map_err(|e| anyhow!("node revoke {name}: {e}"))?;
    println!("node/{name} revoked");
    Ok(())
}

/// `k=v` sets, `k-` removes.
pub fn label_patch(args: &[String]) -> anyhow::Result<Value> {
    let mut labels = Map::new();
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            if k.is_empty() {
                bail!("label {a:?}: empty key");
            }
            labels.insert(k.to_string(), Value::String(v.to_string()));
        } else if let Some(k) = a.strip_suffix('-').filter(|k| !k.is_empty()) {
            labels.insert(k.to_string(), Value::Null);
        } else {
            bail!("label {a:?}: expected key=value or key-");
        }
    }
    Ok(json!({"metadata": {"labels": labels}}))
}

pub async fn label(c: &Client, name: &str, args: &[String]) -> anyhow::Result<()> {
    let p = label_patch(args).map_err(|e| anyhow!("node label {name}: {e}"))?;
    patch(c, "label", name, p).await?;
    println!("node/{name} labeled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_args() {
        let p = label_patch(&["a=1".into(), "b-".into(), "c=".into()]).unwrap();
        assert_eq!(p, json!({"metadata":{"labels":{"a":"1","b":null,"c":""}}}));
        assert!(label_patch(&["nope".into()]).is_err());
        assert!(label_patch(&["=x".into()]).is_err());
    }
}
