//! Checks and normalisation of objects written through the API: names, namespaces, labels,
//! the kind's required fields (devices: [`crate::devices`]), Secrets' `stringData` folded
//! into base64 `data`.

use std::collections::BTreeMap;

use barge_edge_proto::object::{Kind, Object};
use base64::Engine as _;
use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// A DNS-1123 label: 1-63 lowercase alphanumerics or '-', starting and ending alphanumeric.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("{s:?} must be 1 to 63 characters"));
    }
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| alnum(c) || c == b'-') || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(format!(
            "{s:?} is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err(format!("{s:?} must be 1 to 253 characters"));
    }
    for part in s.split('.') {
        dns1123_label(part).map_err(|_| {
            format!("{s:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')")
        })?;
    }
    Ok(())
}

/// A label key (`[prefix/]name`) or value, Kubernetes' rules.
fn label_part(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let b = s.as_bytes();
    s.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Labels (and selectors): keys `[dns-subdomain/]name`, values at most 63 characters.
pub fn labels(what: &str, labels: &BTreeMap<String, String>) -> ApiResult<()> {
    for (k, v) in labels {
        let (prefix, name) = match k.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, k.as_str()),
        };
        let prefix_ok = prefix.is_none_or(|p| dns1123_subdomain(p).is_ok());
        if !prefix_ok || !label_part(name, false) {
            return Err(ApiError::bad_request(format!(
                "{what}: key {k:?} is not a valid label key"
            )));
        }
        if !label_part(v, true) {
            return Err(ApiError::bad_request(format!(
                "{what}: value {v:?} of {k:?} is not a valid label value"
            )));
        }
    }
    Ok(())
}

/// A JSON object of strings (`matchLabels`, `nodeSelector`, template labels) as a map.
fn string_map(what: &str, v: &Value) -> ApiResult<BTreeMap<String, String>> {
    if v.is_null() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_value(v.clone())
        .map_err(|_| ApiError::bad_request(format!("{what} must be a map of strings")))
}

/// Check `obj` for a write to `kind`/`ns` (and `name` from the URL on PUT), and normalise it:
/// apiVersion and namespace filled in, status and server-set metadata dropped, a Secret's
/// `stringData` folded into `data`.
pub fn prepare(obj: &mut Object, kind: Kind, ns: &str, url_name: Option<&str>) -> ApiResult<()> {
    if obj.kind != kind {
        return Err(ApiError::bad_request(format!(
            "kind {} does not match the URL's {}",
            obj.kind,
            kind.plural()
        )));
    }
    if obj.api_version.is_empty() {
        obj.api_version = kind.api_version().to_string();
    } else if obj.api_version != kind.api_version() {
        return Err(ApiError::bad_request(format!(
            "apiVersion {:?} of {kind}: expected {:?}",
            obj.api_version,
            kind.api_version()
        )));
    }
    let name = obj.metadata.name.clone();
    dns1123_subdomain(&name)
        .map_err(|e| ApiError::bad_request(format!("{kind} metadata.name: {e}")))?;
    if let Some(u) = url_name {
        if u != name {
            return Err(ApiError::bad_request(format!(
                "{kind} metadata.name {name:?} does not match the URL's {u:?}"
            )));
        }
    }
    dns1123_label(ns).map_err(|e| ApiError::bad_request(format!("namespace: {e}")))?;
    match obj.metadata.namespace.as_deref() {
        Some(n) if n != ns => {
            return Err(ApiError::bad_request(format!(
                "{kind} {name}: metadata.namespace {n:?} does not match the URL's {ns:?}"
            )))
        }
        _ => obj.metadata.namespace = Some(ns.to_string()),
    }
    labels(
        &format!("{kind} {name} metadata.labels"),
        &obj.metadata.labels,
    )?;
    obj.metadata.resource_version = None;
    obj.metadata.uid = None;
    obj.metadata.creation_timestamp = None;
    obj.status = Value::Null;
    let what = format!("{kind} {ns}/{name}");
    match kind {
        Kind::Pod => pod_spec(&format!("{what} spec"), &obj.spec)?,
        Kind::Deployment => {
            match obj.spec.get("replicas") {
                None | Some(Value::Null) => {}
                Some(r) if r.as_i64().is_some_and(|n| (0..=100_000).contains(&n)) => {}
                Some(r) => {
                    return Err(ApiError::bad_request(format!(
                        "{what} spec.replicas: {r} is not an integer >= 0"
                    )))
                }
            }
            workload(&what, &obj.spec)?;
        }
        Kind::DaemonSet => workload(&what, &obj.spec)?,
        Kind::ConfigMap => data_keys(&what, obj.data.as_ref())?,
        Kind::Secret => secret(&what, obj)?,
        Kind::Node => {
            return Err(ApiError::bad_request(
                "nodes are created by `barge edge join`; change their labels with PATCH",
            ))
        }
        Kind::DeviceModel => {
            crate::devices::check_model(&obj.spec)
                .map_err(|e| ApiError::bad_request(format!("{what} {e}")))?;
        }
        Kind::Device => {
            crate::devices::check_device(&obj.spec)
                .map_err(|e| ApiError::bad_request(format!("{what} {e}")))?;
        }
    }
    if kind != Kind::Secret && obj.string_data.is_some() {
        return Err(ApiError::bad_request(format!(
            "{what}: stringData is only for Secrets"
        )));
    }
    Ok(())
}

/// A pod spec: at least one container, each with a DNS-1123 name and an image.
fn pod_spec(what: &str, spec: &Value) -> ApiResult<()> {
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what}.containers: at least one container is required"
            ))
        })?;
    for (i, c) in containers.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        dns1123_label(name)
            .map_err(|e| ApiError::bad_request(format!("{what}.containers[{i}].name: {e}")))?;
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "{what}.containers[{i}] ({name}): image is required"
            )));
        }
    }
    if let Some(n) = spec.get("nodeName").filter(|v| !v.is_null()) {
        let n = n.as_str().unwrap_or("");
        dns1123_subdomain(n).map_err(|e| ApiError::bad_request(format!("{what}.nodeName: {e}")))?;
    }
    let sel = string_map(
        &format!("{what}.nodeSelector"),
        spec.get("nodeSelector").unwrap_or(&Value::Null),
    )?;
    labels(&format!("{what}.nodeSelector"), &sel)
}

/// Deployment and DaemonSet: `selector.matchLabels` (non-empty) matching the template's
/// labels, and a valid template pod spec.
fn workload(what: &str, spec: &Value) -> ApiResult<()> {
    let selector = spec.get("selector").unwrap_or(&Value::Null);
    if selector
        .get("matchExpressions")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(format!(
            "{what} spec.selector.matchExpressions is not supported (use matchLabels)"
        )));
    }
    let ml = string_map(
        &format!("{what} spec.selector.matchLabels"),
        selector.get("matchLabels").unwrap_or(&Value::Null),
    )?;
    if ml.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{what} spec.selector.matchLabels is required"
        )));
    }
    labels(&format!("{what} spec.selector.matchLabels"), &ml)?;
    let template = spec.get("template").unwrap_or(&Value::Null);
    let tl = string_map(
        &format!("{what} spec.template.metadata.labels"),
        template
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .unwrap_or(&Value::Null),
    )?;
    for (k, v) in &ml {
        if tl.get(k) != Some(v) {
            return Err(ApiError::bad_request(format!(
                "{what} spec.selector.matchLabels {k}={v} does not match spec.template.metadata.labels"
            )));
        }
    }
    pod_spec(
        &format!("{what} spec.template.spec"),
        template.get("spec").unwrap_or(&Value::Null),
    )
}

/// ConfigMap and Secret keys: alphanumerics, '-', '_' and '.'.
fn data_keys(what: &str, data: Option<&BTreeMap<String, String>>) -> ApiResult<()> {
    for k in data.into_iter().flat_map(|d| d.keys()) {
        let ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !ok {
            return Err(ApiError::bad_request(format!(
                "{what}: data key {k:?} is not valid (letters, digits, '-', '_', '.')"
            )));
        }
    }
    Ok(())
}

/// Secret: `data` values must be base64; `stringData` is folded into `data` (it wins on
/// the same key, as in Kubernetes).
fn secret(what: &str, obj: &mut Object) -> ApiResult<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    for (k, v) in obj.data.iter().flat_map(|d| d.iter()) {
        b64.decode(v)
            .map_err(|e| ApiError::bad_request(format!("{what}: data[{k}] is not base64: {e}")))?;
    }
    if let Some(sd) = obj.string_data.take() {
        let data = obj.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in sd {
            data.insert(k, b64.encode(v.as_bytes()));
        }
    }
    data_keys(what, obj.data.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_label("web-1").is_ok());
        assert!(dns1123_label("Web").is_err());
        assert!(dns1123_label("-web").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("a.b-c.d").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_subdomain("a_b").is_err());
    }

    #[test]
    fn secret_string_data_is_folded() {
        let mut o: Object = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA=="}, "stringData": {"b": "hello"}
        }))
        .unwrap();
        prepare(&mut o, Kind::Secret, "default", None).unwrap();
        let d = o.data.unwrap();
        assert_eq!(d["a"], "eA==");
        assert_eq!(d["b"], "aGVsbG8=");
        assert!(o.string_data.is_none());
        assert_eq!(o.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn deployment_checks() {
        let mk = |spec: Value| -> Object {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": spec
            }))
            .unwrap()
        };
        let tpl = serde_json::json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let good = serde_json::json!({"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": tpl});
        assert!(prepare(&mut mk(good), Kind::Deployment, "default", Some("web")).is_ok());
        let neg = serde_json::json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": tpl});
        let e = prepare(&mut mk(neg), Kind::Deployment, "default", None).unwrap_err();
        assert!(e.message.contains("replicas"), "{}", e.message);
        let mism = serde_json::json!({"selector": {"matchLabels": {"app": "db"}}, "template": tpl});
        let e = prepare(&mut mk(mism), Kind::Deployment, "default", None).unwrap_err();
        assert!(e.message.contains("does not match"), "{}", e.message);
        let good2 =
            serde_json::json!({"selector": {"matchLabels": {"app": "web"}}, "template": tpl});
        let e = prepare(&mut mk(good2), Kind::Deployment, "default", Some("other")).unwrap_err();
        assert!(e.message.contains("URL"), "{}", e.message);
    }
}
