//! `docker import --change`: the Dockerfile instructions that set image config fields
//! (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`, `LABEL`, `EXPOSE`, `STOPSIGNAL`), applied
//! to the `config` object of an image config (docker's capitalised field names).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Apply every change, in order, to `config`.
pub(crate) fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        apply_change(config, change)?;
    }
    Ok(())
}

fn bad(change: &str, reason: impl Into<String>) -> Error {
    Error::invalid(format!("change {change:?}"), reason)
}

fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let trimmed = change.trim();
    let (instruction, rest) = trimmed
        .split_once(char::is_whitespace)
        .map(|(i, r)| (i, r.trim()))
        .unwrap_or((trimmed, ""));
    let instruction = instruction.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(bad(change, format!("{instruction} needs an argument")));
    }
    match instruction.as_str() {
        "CMD" => {
            config.insert("Cmd".into(), json!(command(change, rest)?));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), json!(command(change, rest)?));
        }
        "ENV" => {
            let mut env: Vec<String> = string_list(config.get("Env"));
            for (k, v) in pairs(change, rest, true)? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix) && e != &k);
                env.push(format!("{k}={v}"));
            }
            config.insert("Env".into(), json!(env));
        }
        "LABEL" => {
            let pairs = pairs(change, rest, false)?;
            with_object(config, "Labels", |labels| {
                for (k, v) in pairs {
                    labels.insert(k, json!(v));
                }
            });
        }
        "WORKDIR" => {
            let dir = single(change, rest)?;
            let dir = if dir.starts_with('/') {
                dir
            } else {
                let base = config.get("WorkingDir").and_then(Value::as_str).unwrap_or("/");
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            config.insert("WorkingDir".into(), json!(dir));
        }
        "USER" => {
            config.insert("User".into(), json!(single(change, rest)?));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(single(change, rest)?));
        }
        "EXPOSE" => {
            let mut ports = Vec::new();
            for p in words(change, rest)? {
                ports.push(port(change, &p)?);
            }
            with_object(config, "ExposedPorts", |exposed| {
                for p in ports {
                    exposed.insert(p, json!({}));
                }
            });
        }
        other => {
            return Err(bad(
                change,
                format!("{other} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, WORKDIR are)"),
            ))
        }
    }
    Ok(())
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Change the object `config[key]` (created if missing or not an object).
fn with_object(
    config: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce(&mut Map<String, Value>),
) {
    let mut m = match config.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    f(&mut m);
    config.insert(key.into(), Value::Object(m));
}

/// A command: a JSON array of strings (exec form), or a shell command line (shell form, run
/// with `/bin/sh -c`).
fn command(change: &str, rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        if let Ok(args) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(args);
        }
        if serde_json::from_str::<Value>(rest).is_ok() {
            return Err(bad(change, "the exec form must be a JSON array of strings"));
        }
        // Not JSON at all: docker takes it as a shell command line, and so do we.
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// Exactly one word (quotes removed).
fn single(change: &str, rest: &str) -> Result<String> {
    let mut w = words(change, rest)?;
    match (w.pop(), w.is_empty()) {
        (Some(one), true) => Ok(one),
        _ => Err(bad(change, "expected exactly one value")),
    }
}

/// `k=v k2="v 2"` pairs; with `legacy`, `k v w` (one pair, the value is the rest of the line)
/// when the first word has no `=`, as Dockerfile's ENV allows.
fn pairs(change: &str, rest: &str, legacy: bool) -> Result<Vec<(String, String)>> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if legacy && !first.contains('=') {
        let value = rest[first.len()..].trim();
        if value.is_empty() {
            return Err(bad(change, format!("no value for {first}")));
        }
        let value = words(change, value)?.join(" ");
        return Ok(vec![(first.to_string(), value)]);
    }
    let mut out = Vec::new();
    for w in words(change, rest)? {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => return Err(bad(change, format!("expected key=value, got {w:?}"))),
        }
    }
    Ok(out)
}

/// Split on unquoted whitespace; `"…"` and `'…'` group (quotes removed), `\` escapes the next
/// character outside single quotes.
fn words(change: &str, s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(bad(change, "ends with a lone backslash")),
            },
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(bad(change, "unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` → docker's `port/proto` keys.
fn port(change: &str, p: &str) -> Result<String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(
            change,
            format!("port {p:?}: protocol must be tcp, udp or sctp"),
        ));
    }
    let valid = |n: &str| n.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match ports.split_once('-') {
        Some((a, b)) => valid(a) && valid(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
        None => valid(ports),
    };
    if !ok {
        return Err(bad(
            change,
            format!("port {p:?}: expected a port number (1-65535) or range"),
        ));
    }
    Ok(format!("{ports}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<Value> {
        let mut m = Map::new();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut m, &changes)?;
        Ok(Value::Object(m))
    }

    #[test]
    fn dockerfile_changes() {
        let c = run(&[
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "entrypoint /init --flag",
            "ENV A=b C=\"d e\"",
            "ENV PATH /usr/bin:/bin",
            "ENV A=z",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "LABEL org.x=1 'y z'=\"two words\"",
            "EXPOSE 80 53/udp 8000-8002/tcp",
            "STOPSIGNAL SIGTERM",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/init --flag"]));
        assert_eq!(c["Env"], json!(["C=d e", "PATH=/usr/bin:/bin", "A=z"]));
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["Labels"], json!({"org.x": "1", "y z": "two words"}));
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000-8002/tcp": {}})
        );
        assert_eq!(c["StopSignal"], "SIGTERM");
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for bad in [
            "VOLUME /data",
            "RUN true",
            "CMD",
            "EXPOSE 70000",
            "EXPOSE 80/icmp",
            "LABEL novalue",
            "ENV A=\"open",
            "USER a b",
            r#"CMD [1, 2]"#,
        ] {
            let err = run(&[bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
