//! `--security-opt seccomp=FILE`: a profile in docker's format (archMap, includes/excludes by
//! capability and architecture) or already in the OCI format, turned into `linux.seccomp`.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Load the profile `path` names, or (text starting with `{`) the profile itself, as the
/// docker CLI sends it in the API's `SecurityOpt` (it reads the file on its side).
pub fn load_profile(path: &Path, caps: &[String]) -> Result<Value> {
    let given = path.to_string_lossy();
    let (text, name) = if given.trim_start().starts_with('{') {
        (given.to_string(), "(given inline)".to_string())
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            what: "read seccomp profile",
            path: path.to_path_buf(),
            source: e,
        })?;
        (text, path.display().to_string())
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("seccomp profile {name}: {e}")))?;
    let out = convert(&v, caps, std::env::consts::ARCH);
    // Must parse as an OCI seccomp section.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| Error::Invalid(format!("seccomp profile {name}: {e}")))?;
    Ok(out)
}

fn oci_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "x86" => "SCMP_ARCH_X86",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    }
}

/// Convert a docker profile; an OCI one (no `archMap`, no includes) passes through.
pub fn convert(v: &Value, caps: &[String], arch: &str) -> Value {
    let mut out = json!({"defaultAction": v["defaultAction"]});
    if let Some(e) = v.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    let host = oci_arch(arch);
    let mut arches: Vec<Value> = Vec::new();
    if let Some(map) = v["archMap"].as_array() {
        for a in map {
            if a["architecture"] == host {
                arches.push(a["architecture"].clone());
                if let Some(sub) = a["subArchitectures"].as_array() {
                    arches.extend(sub.iter().cloned());
                }
            }
        }
    } else if let Some(a) = v["architectures"].as_array() {
        arches = a.clone();
    }
    if !arches.is_empty() {
        out["architectures"] = Value::Array(arches);
    }
    let applies = |r: &Value| -> bool {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        let has = |c: &Value| c.as_str().is_some_and(|c| caps.iter().any(|x| x == c));
        let arch_ok = |a: &Value| a.as_str().is_some_and(|a| a == arch || oci_arch(arch) == a);
        let inc_caps = inc["caps"].as_array().is_none_or(|l| l.iter().all(has));
        let inc_arch = inc["arches"]
            .as_array()
            .is_none_or(|l| l.iter().any(arch_ok));
        let exc_caps = exc["caps"].as_array().is_some_and(|l| l.iter().any(has));
        let exc_arch = exc["arches"]
            .as_array()
            .is_some_and(|l| l.iter().any(arch_ok));
        inc_caps && inc_arch && !exc_caps && !exc_arch
    };
    let mut rules = Vec::new();
    for r in v["syscalls"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if !applies(r) {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        for k in ["args", "errnoRet"] {
            if let Some(x) = r.get(k).filter(|x| !x.is_null()) {
                rule[k] = x.clone();
            }
        }
        rules.push(rule);
    }
    out["syscalls"] = Value::Array(rules);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_profiles_as_the_docker_cli_sends_them() {
        let inline = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let v = load_profile(Path::new(inline), &[]).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        let e = load_profile(Path::new("{not json"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(given inline)"), "{e}");
    }

    #[test]
    fn converts_docker_profiles() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x86_64"]}}
            ]
        });
        let out = convert(&p, &["CAP_CHOWN".into()], "x86_64");
        assert_eq!(
            out["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        let names: Vec<&Value> = out["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["names"][0])
            .collect();
        assert_eq!(names, vec![&json!("read"), &json!("arch_prctl")]);
        let out = convert(&p, &["CAP_SYS_ADMIN".into()], "aarch64");
        let names: Vec<&Value> = out["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["names"][0])
            .collect();
        assert_eq!(names, vec![&json!("read"), &json!("mount")]);
    }
}
