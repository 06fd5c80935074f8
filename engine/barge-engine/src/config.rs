//! A container's configuration as the user asked for it (docker's `run` flags, resolved
//! against the image), stored in the metadata database.

pub mod labels;
pub mod logging;
pub mod security;

use std::collections::BTreeMap;

pub use barge_shim::config::RestartPolicy;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// The image as the user named it, and its ID (config digest).
    pub image: String,
    pub image_id: String,
    /// The process: entrypoint + cmd (image defaults already applied).
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub restart: RestartPolicy,
    pub autoremove: bool,
    pub mounts: Vec<MountSpec>,
    /// Bytes.
    pub memory: Option<i64>,
    /// CPUs, as `--cpus` (1.5 = one and a half).
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `unconfined`, or the path of a profile (docker or OCI format); None: the default.
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
    pub init: bool,
    /// `none`, `host`, `container:<id>`, or the network the container joins first (default
    /// `barge`).
    pub network: String,
    /// The networks it joins, the first being its primary one (ports are published there);
    /// empty for `none`, `host` and `container:`.
    pub networks: Vec<Endpoint>,
    /// `-p`.
    pub ports: Vec<crate::network::ports::PortSpec>,
    /// `-P`: publish every exposed port on a free host port.
    pub publish_all: bool,
    /// Exposed ports (image EXPOSE and `--expose`), as `80/tcp`.
    pub exposed: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<String>,
    pub stop_signal: String,
    pub stop_timeout: Option<u32>,
    pub log_max_size: Option<u64>,
    pub log_max_files: u32,
    /// The pod it belongs to (a pod's id, name or id prefix at create; its full id once
    /// created). A pod member joins the pod's namespaces: no own -p, --network, --hostname.
    pub pod: Option<String>,
    /// A pod's init container: started in creation order by `pod_start`, each must exit 0
    /// before the next (and before the pod's other containers) starts.
    pub init_container: bool,
    /// Extra groups of the process (CRI supplemental_groups), on top of the user's.
    pub supplemental_groups: Vec<u32>,
    /// Paths masked in the container (CRI masked_paths); None: docker's defaults.
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only in the container (CRI readonly_paths); None: docker's defaults.
    pub readonly_paths: Option<Vec<String>>,
    /// Namespaced sysctls set in the container (`--sysctl`, CRI sysctls).
    pub sysctls: BTreeMap<String, String>,
    /// The PID namespace: "" its own, `host`, or `container:ID` (CRI TARGET).
    pub pid_mode: String,
    /// OCI annotations besides the labels (CRI annotations).
    pub annotations: BTreeMap<String, String>,
    /// Where the shim writes the container's log (an absolute host path, CRI `log_directory`
    /// + `log_path`); None: the container's directory.
    pub log_path: Option<std::path::PathBuf>,
    /// The health check: as the user asked (`--health-*`, the API's `Healthcheck`) at create,
    /// merged with the image's `HEALTHCHECK` once created. None: none (or the image's).
    pub healthcheck: Option<crate::health::HealthCheck>,
}

/// A container's place on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub network: String,
    /// Extra names it is known by on this network (`--network-alias`).
    pub aliases: Vec<String>,
    /// A fixed address (`--ip`/`--ip6`), handed to host-local IPAM.
    pub ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// `bind` or `volume`.
    pub kind: String,
    /// Host path (bind) or volume name (volume).
    pub source: String,
    pub destination: String,
    pub readonly: bool,
    /// `-v NAME:/dst:nocopy`: a new volume is not filled with the image's content at `/dst`.
    #[serde(default)]
    pub nocopy: bool,
}

impl MountSpec {
    /// Parse `-v SRC:DST[:ro|rw]` (SRC absolute: a bind mount; otherwise a named volume) or
    /// `-v DST` (an anonymous volume, named later).
    pub fn parse(s: &str) -> Result<MountSpec> {
        let bad = |why: &str| Error::Invalid(format!("-v {s:?}: {why}"));
        let parts: Vec<&str> = s.split(':').collect();
        let (source, dest, mode) = match parts.as_slice() {
            [d] => ("", *d, ""),
            [src, d] => (*src, *d, ""),
            [src, d, m] => (*src, *d, *m),
            _ => return Err(bad("expected [SOURCE:]DESTINATION[:ro|rw]")),
        };
        if !dest.starts_with('/') {
            return Err(bad("the destination must be an absolute path"));
        }
        if dest.split('/').any(|c| c == "..") {
            return Err(bad("the destination must not contain \"..\""));
        }
        let mut readonly = false;
        let mut nocopy = false;
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => readonly = true,
                "rw" => readonly = false,
                "nocopy" if !source.starts_with('/') => nocopy = true,
                "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" => {}
                other => return Err(bad(&format!("unknown mode {other:?}"))),
            }
        }
        let kind = if source.starts_with('/') {
            "bind"
        } else {
            if !source.is_empty() {
                crate::volumes::validate_name(source)?;
            }
            "volume"
        };
        Ok(MountSpec {
            kind: kind.into(),
            source: source.into(),
            destination: dest.into(),
            readonly,
            nocopy,
        })
    }
}

/// Parse a size like docker's `--memory`: `512m`, `1g`, `1024k`, `1000000` (bytes), `0`
/// (no limit). `flag` names it as docker does (`-m, --memory`); a value that is not a size
/// (`-1`, `lots`) is docker's "invalid argument" bad parameter. The range is checked with the
/// rest of the request ([`crate::validate`]).
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let digits = s.bytes().next().is_some_and(|b| b.is_ascii_digit());
    digits
        .then(|| barge_util::size::parse_size(s).ok())
        .flatten()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| {
            Error::BadParameter(format!(
                "invalid argument \"{s}\" for \"{flag}\" flag: invalid size: '{s}'"
            ))
        })
}

/// Parse `--cpus`: a decimal number of CPUs (its range is checked with the rest of the
/// request, [`crate::validate`]).
pub fn parse_cpus(s: &str) -> Result<f64> {
    s.trim().parse::<f64>().map_err(|_| {
        Error::BadParameter(format!(
            "invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number"
        ))
    })
}

/// Parse an `--env-file`: `KEY=VALUE` lines, `KEY` alone takes the value from our
/// environment, `#` comments and blank lines are skipped.
pub fn parse_env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        what: "read env file",
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(
            expand_env(line)
                .map_err(|e| Error::Invalid(format!("{} line {}: {e}", path.display(), n + 1)))?,
        );
    }
    Ok(out)
}

/// `KEY=VALUE` as given; `KEY` alone takes our value (and is dropped if we have none).
pub fn expand_env(s: &str) -> std::result::Result<String, String> {
    let key = s.split('=').next().unwrap_or_default();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("invalid environment variable {s:?}"));
    }
    if s.contains('=') {
        Ok(s.to_string())
    } else {
        Ok(match std::env::var(key) {
            Ok(v) => format!("{key}={v}"),
            Err(_) => String::new(),
        })
    }
}

/// Merge environment lists: later entries replace earlier ones with the same key.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in base.iter().chain(over).filter(|e| !e.is_empty()) {
        let key = e.split('=').next().unwrap_or_default();
        out.retain(|x| x.split('=').next() != Some(key));
        out.push(e.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_volumes() {
        let m = MountSpec::parse("/host:/ctr:ro").unwrap();
        assert_eq!((m.kind.as_str(), m.readonly), ("bind", true));
        assert_eq!(MountSpec::parse("data:/d").unwrap().kind, "volume");
        assert_eq!(MountSpec::parse("/anon").unwrap().source, "");
        assert!(MountSpec::parse("/a:rel").is_err());
        assert!(MountSpec::parse("/a:/b:xx").is_err());
        assert!(MountSpec::parse("/a:/b/../c").is_err());
        assert!(MountSpec::parse("vol:/d:nocopy").unwrap().nocopy);
        assert!(!MountSpec::parse("vol:/d").unwrap().nocopy);
        assert!(MountSpec::parse("/a:/b:nocopy").is_err());
    }

    #[test]
    fn parses_limits_and_env() {
        assert_eq!(parse_bytes("--memory", "64m").unwrap(), 64 << 20);
        assert!(parse_bytes("--memory", "lots").is_err());
        assert_eq!(
            parse_bytes("-m, --memory", "-1").unwrap_err().to_string(),
            "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'"
        );
        assert_eq!(parse_cpus("-1").unwrap(), -1.0);
        assert!(parse_cpus("x").is_err());
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert_eq!(
            merge_env(&["A=1".into(), "B=2".into()], &["A=3".into()]),
            vec!["B=2".to_string(), "A=3".to_string()]
        );
        assert!(expand_env("=x").is_err());
    }
}
