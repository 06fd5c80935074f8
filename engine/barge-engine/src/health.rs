//! Health checks, the engine's side: one typed configuration ([`HealthCheck`], docker's
//! `Healthcheck` shape) from the image's `HEALTHCHECK`, `run --health-*` flags
//! ([`HealthFlags`]) or the Docker API's create body, merged as docker merges them, checked,
//! and resolved into the probe the container's shim runs ([`HealthCheck::probe`]); and the
//! shim's record read back for `ps`, `inspect` and the API ([`Engine::health`]).

use std::time::Duration;

use barge_shim::health::{HealthProbe, HealthRecord};
use serde::{Deserialize, Serialize};

use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

pub use barge_shim::health::HealthStatus;

/// docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;

/// The shortest interval, timeout, start period or start interval (docker's 1ms).
const MIN_NS: i64 = 1_000_000;

/// A health check as docker writes it (image config, create body, inspect's
/// `Config.Healthcheck`): durations in nanoseconds, 0 for "inherited or the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthCheck {
    /// `[]` inherit the image's; `["NONE"]` none; `["CMD", arg…]`; `["CMD-SHELL", command]`.
    #[serde(deserialize_with = "null_as_empty")]
    pub test: Vec<String>,
    #[serde(deserialize_with = "null_as_zero")]
    pub interval: i64,
    #[serde(deserialize_with = "null_as_zero")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_as_zero")]
    pub start_period: i64,
    #[serde(deserialize_with = "null_as_zero")]
    pub start_interval: i64,
    #[serde(deserialize_with = "null_as_zero")]
    pub retries: i64,
}

/// docker-compose 1.29 sends `null` for the durations it was not given.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or_default())
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl HealthCheck {
    /// The image's `Healthcheck` from its raw config JSON (None without one).
    pub fn from_image_config(raw: &[u8]) -> Option<HealthCheck> {
        let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
        let hc = v.get("config")?.get("Healthcheck")?;
        if hc.is_null() {
            return None;
        }
        serde_json::from_value(hc.clone()).ok()
    }

    /// Whether it disables the check (`["NONE"]`).
    pub fn is_none(&self) -> bool {
        self.test.first().map(String::as_str) == Some("NONE")
    }

    /// Check it as docker's API does; `what` names it in errors (`Healthcheck`,
    /// `HEALTHCHECK of image x`).
    pub fn validate(&self, what: &str) -> Result<()> {
        let bad = |m: String| Error::BadParameter(format!("{what}: {m}"));
        match self.test.first().map(String::as_str) {
            None => {}
            Some("NONE") if self.test.len() == 1 => {}
            Some("NONE") => return Err(bad("Test [\"NONE\"] takes no arguments".into())),
            Some("CMD") if self.test.len() >= 2 && !self.test[1].is_empty() => {}
            Some("CMD") => return Err(bad("Test [\"CMD\", …] needs a command".into())),
            Some("CMD-SHELL") if self.test.len() == 2 && !self.test[1].trim().is_empty() => {}
            Some("CMD-SHELL") => {
                return Err(bad(
                    "Test [\"CMD-SHELL\", …] needs exactly one command line".into(),
                ))
            }
            Some(other) => {
                return Err(bad(format!(
                    "Test must start with NONE, CMD or CMD-SHELL, not {other:?}"
                )))
            }
        }
        for (field, ns) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if ns != 0 && ns < MIN_NS {
                return Err(bad(format!(
                    "{field} {ns}ns must be at least 1ms (or 0 for the default)"
                )));
            }
        }
        if self.retries < 0 {
            return Err(bad(format!(
                "Retries {} must not be negative",
                self.retries
            )));
        }
        Ok(())
    }

    /// docker's merge of the user's check over the image's: no user check takes the image's;
    /// an empty Test takes the image's test, and each zero field the image's value.
    pub fn merge(user: Option<HealthCheck>, image: Option<HealthCheck>) -> Option<HealthCheck> {
        let Some(mut u) = user else { return image };
        let Some(i) = image else { return Some(u) };
        if u.test.is_empty() {
            u.test = i.test;
        }
        for (mine, theirs) in [
            (&mut u.interval, i.interval),
            (&mut u.timeout, i.timeout),
            (&mut u.start_period, i.start_period),
            (&mut u.start_interval, i.start_interval),
            (&mut u.retries, i.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
        Some(u)
    }

    /// What the shim runs, defaults applied; None when there is no check (no test, or
    /// `NONE`). A `CMD-SHELL` test runs with `/bin/sh -c`.
    pub fn probe(&self) -> Option<HealthProbe> {
        let cmd = match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
            Some((kind, [line])) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), line.clone()]
            }
            _ => return None,
        };
        let dur = |ns: i64, default: Duration| {
            if ns > 0 {
                Duration::from_nanos(ns as u64)
            } else {
                default
            }
        };
        Some(HealthProbe {
            cmd,
            interval: dur(self.interval, DEFAULT_INTERVAL),
            timeout: dur(self.timeout, DEFAULT_TIMEOUT),
            start_period: dur(self.start_period, Duration::ZERO),
            start_interval: dur(self.start_interval, DEFAULT_START_INTERVAL),
            retries: u32::try_from(self.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        })
    }
}

/// `run`/`create`'s health flags, as typed (durations as Go durations: `30s`, `1m30s`).
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
    pub no_healthcheck: bool,
}

impl HealthFlags {
    /// The user's check (None: none given, the image's applies). `--no-healthcheck` with
    /// another health flag, a duration that does not parse, a negative one, a zero interval
    /// or timeout, negative retries are refused, naming the flag.
    pub fn check(&self) -> Result<Option<HealthCheck>> {
        let given = self.cmd.is_some()
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.start_interval.is_some()
            || self.retries.is_some();
        if self.no_healthcheck {
            if given {
                return Err(Error::BadParameter(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(HealthCheck {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !given {
            return Ok(None);
        }
        let dur = |flag: &str, v: &Option<String>, zero_ok: bool| -> Result<i64> {
            let Some(s) = v else { return Ok(0) };
            let ns = barge_util::time::parse_go_duration(s)
                .map_err(|e| Error::BadParameter(format!("--{flag}: {e}")))?;
            if ns < 0 {
                return Err(Error::BadParameter(format!(
                    "--{flag} {s}: cannot be negative"
                )));
            }
            if ns == 0 && !zero_ok {
                return Err(Error::BadParameter(format!(
                    "--{flag} {s}: must be more than 0 (leave it out for the default)"
                )));
            }
            if ns != 0 && ns < MIN_NS {
                return Err(Error::BadParameter(format!(
                    "--{flag} {s}: must be at least 1ms"
                )));
            }
            Ok(ns)
        };
        let retries = match self.retries {
            Some(r) if r < 0 => {
                return Err(Error::BadParameter(format!(
                    "--health-retries {r}: cannot be negative"
                )))
            }
            Some(r) => r,
            None => 0,
        };
        let test = match &self.cmd {
            Some(c) if c.trim().is_empty() => {
                return Err(Error::BadParameter("--health-cmd: empty command".into()))
            }
            Some(c) => vec!["CMD-SHELL".into(), c.clone()],
            None => Vec::new(),
        };
        Ok(Some(HealthCheck {
            test,
            interval: dur("health-interval", &self.interval, false)?,
            timeout: dur("health-timeout", &self.timeout, false)?,
            start_period: dur("health-start-period", &self.start_period, true)?,
            start_interval: dur("health-start-interval", &self.start_interval, false)?,
            retries,
        }))
    }
}

impl Engine {
    /// The container's health record when it has a health check: what its shim recorded, or
    /// `starting` before the first probe. None without a check.
    pub fn health(&self, rec: &ContainerRecord) -> Option<HealthRecord> {
        rec.config.healthcheck.as_ref()?.probe()?;
        let dir = self.paths.container(&rec.id);
        Some(
            barge_shim::health::load(&dir)
                .ok()
                .flatten()
                .unwrap_or_default(),
        )
    }
}

/// docker's `State.Health`: `{Status, FailingStreak, Log: [{Start, End, ExitCode, Output}]}`.
pub fn docker_json(h: &HealthRecord) -> serde_json::Value {
    serde_json::json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|r| serde_json::json!({
            "Start": r.start,
            "End": r.end,
            "ExitCode": r.exit_code,
            "Output": r.output,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> HealthFlags {
        HealthFlags::default()
    }

    #[test]
    fn flags_become_a_check() {
        assert_eq!(flags().check().unwrap(), None);
        let h = HealthFlags {
            cmd: Some("test -f /tmp/ok".into()),
            interval: Some("1s".into()),
            retries: Some(2),
            ..flags()
        }
        .check()
        .unwrap()
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "test -f /tmp/ok"]);
        assert_eq!((h.interval, h.timeout, h.retries), (1_000_000_000, 0, 2));
        let p = h.probe().unwrap();
        assert_eq!(p.cmd, ["/bin/sh", "-c", "test -f /tmp/ok"]);
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 2);
        let none = HealthFlags {
            no_healthcheck: true,
            ..flags()
        }
        .check()
        .unwrap()
        .unwrap();
        assert!(none.is_none() && none.probe().is_none());
    }

    #[test]
    fn bad_flags_are_named() {
        let err = |f: HealthFlags| f.check().unwrap_err().to_string();
        let e = err(HealthFlags {
            interval: Some("-1s".into()),
            ..flags()
        });
        assert!(
            e.contains("--health-interval -1s: cannot be negative"),
            "{e}"
        );
        let e = err(HealthFlags {
            interval: Some("0s".into()),
            ..flags()
        });
        assert!(
            e.contains("--health-interval 0s: must be more than 0"),
            "{e}"
        );
        let e = err(HealthFlags {
            timeout: Some("soon".into()),
            ..flags()
        });
        assert!(e.contains("--health-timeout") && e.contains("soon"), "{e}");
        let e = err(HealthFlags {
            retries: Some(-1),
            ..flags()
        });
        assert!(e.contains("--health-retries -1"), "{e}");
        let e = err(HealthFlags {
            no_healthcheck: true,
            cmd: Some("true".into()),
            ..flags()
        });
        assert!(e.contains("--no-healthcheck conflicts"), "{e}");
        // A start period of 0 is the default, not an error.
        assert!(HealthFlags {
            start_period: Some("0s".into()),
            cmd: Some("true".into()),
            ..flags()
        }
        .check()
        .is_ok());
    }

    #[test]
    fn merges_and_validates_like_docker() {
        let image = HealthCheck::from_image_config(
            br#"{"config":{"Healthcheck":{"Test":["CMD","true"],"Interval":2000000000,"Retries":4}}}"#,
        )
        .unwrap();
        assert_eq!(image.test, ["CMD", "true"]);
        assert_eq!(HealthCheck::from_image_config(br#"{"config":{}}"#), None);
        // docker-compose 1.29's nulls are zeros.
        let c: HealthCheck = serde_json::from_str(
            r#"{"Test":["CMD","true"],"Interval":300000000,"Timeout":null,"StartPeriod":null,"Retries":null}"#,
        )
        .unwrap();
        assert_eq!(
            (c.interval, c.timeout, c.start_period, c.retries),
            (300_000_000, 0, 0, 0)
        );
        let user = HealthCheck {
            timeout: 5_000_000_000,
            ..Default::default()
        };
        let m = HealthCheck::merge(Some(user), Some(image.clone())).unwrap();
        assert_eq!(m.test, ["CMD", "true"]);
        assert_eq!(
            (m.interval, m.timeout, m.retries),
            (2_000_000_000, 5_000_000_000, 4)
        );
        assert_eq!(
            HealthCheck::merge(None, Some(image.clone())),
            Some(image.clone())
        );
        let off = HealthCheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(HealthCheck::merge(Some(off), Some(image))
            .unwrap()
            .probe()
            .is_none());
        let bad = |h: HealthCheck| h.validate("Healthcheck").unwrap_err().to_string();
        assert!(bad(HealthCheck {
            test: vec!["CMD".into(), "true".into()],
            interval: -5,
            ..Default::default()
        })
        .contains("Interval -5ns must be at least 1ms"));
        assert!(bad(HealthCheck {
            test: vec!["RUN".into()],
            ..Default::default()
        })
        .contains("NONE, CMD or CMD-SHELL"));
        assert!(bad(HealthCheck {
            test: vec!["CMD-SHELL".into()],
            ..Default::default()
        })
        .contains("CMD-SHELL"));
        assert!(bad(HealthCheck {
            retries: -1,
            ..Default::default()
        })
        .contains("Retries -1"));
    }
}
