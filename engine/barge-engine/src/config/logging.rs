//! `--log-opt` (and the API's `HostConfig.LogConfig{Type, Config}`): the log's rotation.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// How a container's log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Rotate at this many bytes; None: never.
    pub max_size: Option<u64>,
    /// Files kept (the current one included).
    pub max_files: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_size: None,
            max_files: 1,
        }
    }
}

/// The log drivers barge accepts: its one (CRI-format files, rotated like docker's
/// json-file/local), under the names clients ask for it by; "" is the default.
pub const DRIVERS: &[&str] = &["", "json-file", "local", "cri"];

fn option(s: &mut LogSettings, what: &str, k: &str, v: &str) -> Result<()> {
    match k {
        "max-size" => {
            s.max_size = Some(
                barge_util::size::parse_size(v)
                    .map_err(|e| Error::BadParameter(format!("{what} {k}={v}: {e}")))?,
            )
        }
        "max-file" => {
            s.max_files = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::BadParameter(format!(
                    "{what} {k}={v}: max-file must be a positive number"
                ))
            })?
        }
        _ => {
            return Err(Error::BadParameter(format!(
                "{what} {k}={v}: unknown option (max-size, max-file)"
            )))
        }
    }
    Ok(())
}

/// Parse `--log-opt KEY=VALUE` flags.
pub fn parse_log_opts<S: AsRef<str>>(opts: &[S]) -> Result<LogSettings> {
    let mut s = LogSettings::default();
    for o in opts {
        let o = o.as_ref();
        let Some((k, v)) = o.split_once('=') else {
            return Err(Error::BadParameter(format!(
                "--log-opt {o:?}: unknown option (max-size, max-file)"
            )));
        };
        option(&mut s, "--log-opt", k, v)?;
    }
    Ok(s)
}

/// The API's `LogConfig`: a driver barge has (see [`DRIVERS`]) and its options.
pub fn from_log_config(driver: &str, config: &BTreeMap<String, String>) -> Result<LogSettings> {
    if !DRIVERS.contains(&driver) {
        return Err(Error::BadParameter(format!(
            "log driver {driver:?} is not supported (barge keeps logs as rotated files: json-file, local)"
        )));
    }
    let mut s = LogSettings::default();
    for (k, v) in config {
        option(&mut s, "LogConfig.Config", k, v)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_options_from_flags_and_api() {
        let s = parse_log_opts(&["max-size=10m", "max-file=3"]).unwrap();
        assert_eq!(s.max_size, Some(10 << 20));
        assert_eq!(s.max_files, 3);
        assert!(parse_log_opts(&["max-file=0"]).is_err());
        assert!(parse_log_opts(&["mode=non-blocking"]).is_err());
        let e = parse_log_opts(&["max-size=lots"]).unwrap_err().to_string();
        assert!(e.contains("--log-opt max-size=lots"), "{e}");
        let cfg: BTreeMap<String, String> = [("max-size".to_string(), "1k".to_string())].into();
        assert_eq!(
            from_log_config("json-file", &cfg).unwrap().max_size,
            Some(1024)
        );
        assert_eq!(
            from_log_config("", &BTreeMap::new()).unwrap(),
            LogSettings::default()
        );
        assert!(from_log_config("syslog", &BTreeMap::new()).is_err());
    }
}
