//! The config instructions: ENV, LABEL, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL,
//! STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER — each a change of the stage's image config,
//! with variables substituted where docker substitutes them.

use serde_json::{json, Map, Value};

use super::error::{BuildError, Result};
use super::state::StageState;
use crate::ast::{Command, Health, Inst};

/// `dir` relative to the working directory `cwd` (absolute stays), cleaned.
pub fn join_workdir(cwd: &str, dir: &str) -> String {
    let full = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{}/{dir}", if cwd.is_empty() { "/" } else { cwd })
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `time.ParseDuration` (`30s`, `1m30s`, `500ms`, `1.5h`) in nanoseconds; a negative
/// duration is refused (docker's HEALTHCHECK flags refuse them too).
pub fn duration_ns(s: &str) -> Result<i64, String> {
    match barge_util::time::parse_go_duration(s)? {
        ns if ns < 0 => Err(format!("{s:?} is negative: a duration must be 0 or more")),
        ns => Ok(ns),
    }
}

fn command_words(st: &StageState, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = st.shell();
            v.push(s.clone());
            v
        }
    }
}

/// Apply a config instruction to the stage; `expand` substitutes variables in a word.
pub fn apply(
    st: &mut StageState,
    inst: &Inst,
    line: usize,
    expand: &dyn Fn(&str, &StageState) -> Result<String>,
) -> Result<()> {
    match inst {
        Inst::Env(pairs) => {
            for (k, v) in pairs {
                let k = expand(k, st)?;
                let v = expand(v, st)?;
                st.set_env(&k, &v);
            }
        }
        Inst::Label(pairs) => {
            let mut add = Vec::new();
            for (k, v) in pairs {
                add.push((expand(k, st)?, expand(v, st)?));
            }
            let labels = object(&mut st.config, "Labels");
            for (k, v) in add {
                labels.insert(k, json!(v));
            }
        }
        Inst::User(u) => {
            let u = expand(u, st)?;
            st.config.insert("User".into(), json!(u));
        }
        Inst::Expose(ports) => {
            let mut add = Vec::new();
            for p in ports {
                for word in expand(p, st)?.split_whitespace() {
                    let (port, proto) = word.split_once('/').unwrap_or((word, "tcp"));
                    let proto = proto.to_lowercase();
                    let ok_port = port
                        .split_once('-')
                        .map(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok())
                        .unwrap_or_else(|| port.parse::<u16>().is_ok());
                    if !ok_port || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                        return Err(BuildError::at(line, format!("EXPOSE {word}: invalid port")));
                    }
                    add.push(format!("{port}/{proto}"));
                }
            }
            let exposed = object(&mut st.config, "ExposedPorts");
            for p in add {
                exposed.insert(p, json!({}));
            }
        }
        Inst::Volume(vols) => {
            let mut add = Vec::new();
            for v in vols {
                let v = expand(v, st)?;
                if v.trim().is_empty() {
                    return Err(BuildError::at(line, "VOLUME: empty path"));
                }
                add.push(v);
            }
            let volumes = object(&mut st.config, "Volumes");
            for v in add {
                volumes.insert(v, json!({}));
            }
        }
        Inst::Cmd(c) => {
            let words = command_words(st, c);
            st.config.insert("Cmd".into(), json!(words));
            st.cmd_set = true;
        }
        Inst::Entrypoint(c) => {
            let words = command_words(st, c);
            st.config.insert("Entrypoint".into(), json!(words));
            if !st.cmd_set {
                // docker: ENTRYPOINT resets a CMD inherited from the base image.
                st.config.remove("Cmd");
            }
        }
        Inst::Shell(words) => {
            if words.is_empty() {
                return Err(BuildError::at(
                    line,
                    "SHELL needs at least the shell's path",
                ));
            }
            st.config.insert("Shell".into(), json!(words));
        }
        Inst::StopSignal(s) => {
            let s = expand(s, st)?;
            st.config.insert("StopSignal".into(), json!(s));
        }
        Inst::Healthcheck(Health::None) => {
            st.config
                .insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
        }
        Inst::Healthcheck(Health::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }) => {
            let test: Vec<String> = match test {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            };
            let mut hc = Map::new();
            hc.insert("Test".into(), json!(test));
            for (key, v) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                if let Some(v) = v {
                    let ns = duration_ns(v)
                        .map_err(|e| BuildError::at(line, format!("HEALTHCHECK: {e}")))?;
                    hc.insert(key.into(), json!(ns));
                }
            }
            if let Some(r) = retries {
                hc.insert("Retries".into(), json!(r));
            }
            st.config.insert("Healthcheck".into(), Value::Object(hc));
        }
        Inst::Onbuild(trigger) => {
            let list = st.config.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(json!(trigger.original));
            } else {
                *list = json!([trigger.original]);
            }
        }
        Inst::Maintainer(m) => {
            st.author = Some(m.clone());
        }
        Inst::Arg(_) | Inst::Run { .. } | Inst::Copy(_) | Inst::Add(_) | Inst::Workdir(_) => {
            return Err(BuildError::at(line, "internal: not a config instruction"));
        }
    }
    Ok(())
}

/// The object `key` of the config (created, or replaced when it was something else).
fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = config.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("set to an object above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_workdirs() {
        assert_eq!(duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert!(duration_ns("5x").is_err());
        assert!(duration_ns("-2s").is_err());
        assert_eq!(join_workdir("/a", "b/../c"), "/a/c");
        assert_eq!(join_workdir("", "x"), "/x");
        assert_eq!(join_workdir("/a", "/y/"), "/y");
    }
}
