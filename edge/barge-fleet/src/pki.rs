//! `cert create|revoke|list` (admin client certificates) and `ca rotate|retire-old`,
//! `get ca` (the fleet's CAs).

use std::path::Path;

use anyhow::{anyhow, Context as _};
use barge_util::fs::{write_atomic, Durability};
use hyper::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::config::FleetConf;

/// `cert create --name NAME --out DIR`: a key made here (it never leaves this machine), a
/// CSR for `admin:NAME` signed by the hub with the config's credentials; writes
/// `DIR/NAME.key` (0600), `DIR/NAME.crt` and `DIR/NAME.conf` (a config using them).
pub async fn cert_create(
    c: &Client,
    conf: &FleetConf,
    name: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let what = format!("cert create {name}");
    let key = rcgen::KeyPair::generate().map_err(|e| anyhow!("{what}: making a key: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("admin:{name}"));
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| anyhow!("{what}: making the CSR: {e}"))?;
    let v = c
        .call(
            Method::POST,
            "/api/v1/certificates",
            Some(&json!({"name": name, "csr": csr})),
        )
        .await
        .map_err(|e| anyhow!("{what}: {e}"))?
        .json()
        .map_err(|e| anyhow!("{what}: {e}"))?;
    let cert = v
        .get("certificate")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{what}: the answer has no certificate"))?;
    let ca = v.get("ca").and_then(Value::as_str).map(str::to_string);
    std::fs::create_dir_all(out).with_context(|| format!("{what}: create {}", out.display()))?;
    let key_path = out.join(format!("{name}.key"));
    let cert_path = out.join(format!("{name}.crt"));
    let conf_path = out.join(format!("{name}.conf"));
    write_atomic(
        &key_path,
        key.serialize_pem().as_bytes(),
        0o600,
        Durability::Durable,
    )
    .with_context(|| format!("{what}: write {}", key_path.display()))?;
    write_atomic(&cert_path, cert.as_bytes(), 0o644, Durability::Durable)
        .with_context(|| format!("{what}: write {}", cert_path.display()))?;
    let new_conf = FleetConf {
        server: conf.server.clone(),
        ca: ca.or_else(|| conf.ca.clone()),
        token: None,
        cert: Some(format!("{name}.crt")),
        key: Some(format!("{name}.key")),
    };
    let mut data = serde_json::to_vec_pretty(&new_conf)?;
    data.push(b'\n');
    write_atomic(&conf_path, &data, 0o600, Durability::Durable)
        .with_context(|| format!("{what}: write {}", conf_path.display()))?;
    println!(
        "admin certificate {name} (valid until {}): {}",
        v.get("notAfter").and_then(Value::as_str).unwrap_or("?"),
        conf_path.display()
    );
    Ok(())
}

/// `cert revoke NAME`: every certificate of that name is refused from now on.
pub async fn cert_revoke(c: &Client, name: &str) -> anyhow::Result<()> {
    c.call(
        Method::POST,
        &format!("/api/v1/certificates/{name}/revoke"),
        None,
    )
    .await
    .map_err(|e| anyhow!("cert revoke {name}: {e}"))?;
    println!("admin certificate {name} revoked");
    Ok(())
}

/// `cert list`: NAME ISSUED NOT-AFTER REVOKED.
pub async fn cert_list(c: &Client, output: Option<&str>) -> anyhow::Result<()> {
    let v = c
        .get("/api/v1/certificates")
        .await
        .map_err(|e| anyhow!("cert list: {e}"))?;
    if let Some(f) = output {
        return crate::get::print_value(&v, f);
    }
    let mut rows = vec![vec![
        "NAME".to_string(),
        "ISSUED".into(),
        "NOT AFTER".into(),
        "REVOKED".into(),
    ]];
    for i in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        rows.push(vec![s("name"), s("issued"), s("notAfter"), s("revoked")]);
    }
    print_rows(&rows);
    Ok(())
}

fn print_rows(rows: &[Vec<String>]) {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

fn print_cas(v: &Value) {
    let mut rows = vec![vec![
        "SHA256".to_string(),
        "NOT BEFORE".into(),
        "NOT AFTER".into(),
        "ROLE".into(),
        "SUBJECT".into(),
    ]];
    for i in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let mut role = Vec::new();
        if i.get("signsCertificates") == Some(&json!(true)) {
            role.push("signs-certificates");
        }
        if i.get("signsServers") == Some(&json!(true)) {
            role.push("signs-servers");
        }
        let hash = s("sha256");
        rows.push(vec![
            hash.get(..16).unwrap_or(&hash).to_string(),
            s("notBefore"),
            s("notAfter"),
            role.join(","),
            s("subject"),
        ]);
    }
    print_rows(&rows);
    if v.get("rotating") == Some(&json!(true)) {
        println!("(rotation in progress: both CAs are trusted; end it with `barge fleet ca retire-old` once every edge renewed)");
    }
}

/// `get ca [-o json|yaml]`: the fleet's CAs, newest first.
pub async fn ca_get(c: &Client, output: Option<&str>) -> anyhow::Result<()> {
    let v = c
        .get("/api/v1/ca")
        .await
        .map_err(|e| anyhow!("get ca: {e}"))?;
    match output {
        Some(f) if f != "wide" => crate::get::print_value(&v, f),
        _ => {
            print_cas(&v);
            Ok(())
        }
    }
}

/// `ca rotate` / `ca retire-old`.
pub async fn ca_step(c: &Client, step: &str) -> anyhow::Result<()> {
    let v = c
        .call(Method::POST, &format!("/api/v1/ca/{step}"), None)
        .await
        .map_err(|e| anyhow!("ca {step}: {e}"))?
        .json()
        .map_err(|e| anyhow!("ca {step}: {e}"))?;
    print_cas(&v);
    Ok(())
}
