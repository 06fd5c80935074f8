//! docker's container filters (`docker ps --filter`, `GET /containers/json?filters=`): id,
//! name, label, status, exited, ancestor, before, since, network, volume, publish, expose,
//! health.

use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::network::ports::PortBinding;
use crate::status::{State, Status};
use crate::Engine;

use super::Filters;

/// The keys docker's `ps` knows (that barge can answer).
pub const KEYS: &[&str] = &[
    "id", "name", "label", "status", "exited", "ancestor", "before", "since", "network", "volume",
    "publish", "expose", "health",
];

/// The values `health=` takes (`none`: no health check, or not running).
pub const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// docker's container states, the values `status=` takes.
pub const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Filters checked and made ready to match: `before`/`since` resolved to creation times,
/// ports parsed.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub filters: Filters,
    before: Option<i64>,
    since: Option<i64>,
    publish: Vec<PortRange>,
    expose: Vec<PortRange>,
}

/// `80`, `80/tcp`, `8000-8080/udp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
    pub proto: String,
}

impl PortRange {
    pub fn parse(key: &str, s: &str) -> Result<PortRange> {
        let bad = || {
            Error::BadParameter(format!(
                "invalid filter '{key}={s}': expected PORT[-PORT][/PROTO]"
            ))
        };
        let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let first: u16 = a.parse().map_err(|_| bad())?;
        let last: u16 = b.parse().map_err(|_| bad())?;
        if last < first || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
        Ok(PortRange {
            first,
            last,
            proto: proto.to_string(),
        })
    }

    pub fn contains(&self, port: u16, proto: &str) -> bool {
        (self.first..=self.last).contains(&port) && self.proto == proto
    }
}

impl ContainerFilter {
    /// Check `filters` (keys, status and exited values, ports) and resolve `before`/`since`
    /// against the containers of `engine`.
    pub fn new(engine: &Engine, filters: Filters) -> Result<ContainerFilter> {
        filters.check_keys(KEYS)?;
        for s in filters.get("status") {
            if !STATES.contains(&s.as_str()) {
                return Err(Error::BadParameter(format!(
                    "invalid filter 'status={s}' (valid: {})",
                    STATES.join(", ")
                )));
            }
        }
        for h in filters.get("health") {
            if !HEALTH.contains(&h.as_str()) {
                return Err(Error::BadParameter(format!(
                    "invalid filter 'health={h}' (valid: {})",
                    HEALTH.join(", ")
                )));
            }
        }
        for e in filters.get("exited") {
            if e.parse::<i32>().is_err() {
                return Err(Error::BadParameter(format!(
                    "invalid filter 'exited={e}': not an exit code"
                )));
            }
        }
        let created = |key: &str| -> Result<Option<i64>> {
            match filters.get(key).first() {
                None => Ok(None),
                Some(k) => Ok(Some(engine.db.find(k)?.created)),
            }
        };
        let ports = |key: &str| -> Result<Vec<PortRange>> {
            filters
                .get(key)
                .iter()
                .map(|p| PortRange::parse(key, p))
                .collect()
        };
        Ok(ContainerFilter {
            before: created("before")?,
            since: created("since")?,
            publish: ports("publish")?,
            expose: ports("expose")?,
            filters,
        })
    }

    /// Whether stopped containers are wanted too (docker: a status or exited filter lists
    /// every container).
    pub fn wants_all(&self) -> bool {
        self.filters.contains("status") || self.filters.contains("exited")
    }

    /// Whether the container passes every filter. `bindings`/`exposed` are its published
    /// and exposed ports (only read when a port filter is given).
    pub fn matches(
        &self,
        rec: &ContainerRecord,
        st: &Status,
        ports: impl FnOnce() -> (Vec<PortBinding>, Vec<(u16, String)>),
        networks: impl FnOnce() -> Vec<String>,
    ) -> bool {
        let f = &self.filters;
        let c = &rec.config;
        let ok = f.any("id", |v| rec.id.starts_with(v))
            && f.any("name", |v| rec.name.contains(v.trim_start_matches('/')))
            && f.labels_match("label", &c.labels)
            && f.any("status", |v| st.state.as_str() == v)
            && f.any("exited", |v| {
                st.state == State::Exited
                    && st.exit_code.map(|c| c.to_string()).as_deref() == Some(v)
            })
            && f.any("health", |v| st.health.map_or("none", |h| h.as_str()) == v)
            && f.any("ancestor", |v| ancestor_matches(v, &c.image, &c.image_id))
            && f.any("volume", |v| {
                c.mounts.iter().any(|m| m.source == v || m.destination == v)
            })
            && self.before.is_none_or(|t| rec.created < t)
            && self.since.is_none_or(|t| rec.created > t);
        if !ok {
            return false;
        }
        if f.contains("network") {
            let nets = networks();
            if !f.any("network", |v| {
                nets.iter()
                    .any(|n| n == v || (v.len() >= 12 && n.starts_with(v)))
            }) {
                return false;
            }
        }
        if self.publish.is_empty() && self.expose.is_empty() {
            return true;
        }
        let (bindings, exposed) = ports();
        let published = self.publish.is_empty()
            || self
                .publish
                .iter()
                .any(|r| bindings.iter().any(|b| r.contains(b.host_port, &b.proto)));
        let exposes = self.expose.is_empty()
            || self.expose.iter().any(|r| {
                bindings
                    .iter()
                    .any(|b| r.contains(b.container_port, &b.proto))
                    || exposed.iter().any(|(p, proto)| r.contains(*p, proto))
            });
        published && exposes
    }
}

/// `ancestor=`: the image as named (with or without `:latest`), or its ID (or a prefix).
fn ancestor_matches(v: &str, image: &str, image_id: &str) -> bool {
    let bare = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
    image == v
        || bare(image) == bare(v)
        || image_id.contains(v)
        || image_id
            .strip_prefix("sha256:")
            .is_some_and(|h| h.starts_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ContainerConfig, MountSpec};

    fn rec(name: &str, created: i64) -> ContainerRecord {
        let mut config = ContainerConfig {
            image: "busybox".into(),
            image_id: "sha256:abcdef0123".into(),
            ..Default::default()
        };
        config.labels.insert("tier".into(), "front".into());
        config.mounts.push(MountSpec {
            kind: "volume".into(),
            source: "data".into(),
            destination: "/data".into(),
            readonly: false,
            nocopy: false,
        });
        ContainerRecord {
            id: format!("{name}0123456789"),
            name: name.into(),
            created,
            config,
            ready: true,
        }
    }

    fn st(state: State, code: Option<i32>) -> Status {
        Status {
            state,
            pid: 0,
            exit_code: code,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            error: None,
            shim_pid: 0,
            oom_killed: false,
            shim_lost: false,
            health: None,
        }
    }

    fn filter(args: &[&str]) -> ContainerFilter {
        let filters = Filters::parse_args(args).unwrap();
        ContainerFilter {
            publish: filters
                .get("publish")
                .iter()
                .map(|p| PortRange::parse("publish", p).unwrap())
                .collect(),
            expose: filters
                .get("expose")
                .iter()
                .map(|p| PortRange::parse("expose", p).unwrap())
                .collect(),
            filters,
            ..Default::default()
        }
    }

    fn m(f: &ContainerFilter, r: &ContainerRecord, s: &Status) -> bool {
        let b = PortBinding {
            host_ip: String::new(),
            host_port: 8080,
            container_port: 80,
            proto: "tcp".into(),
        };
        f.matches(
            r,
            s,
            || (vec![b], vec![(443, "tcp".into())]),
            || vec!["barge".into()],
        )
    }

    #[test]
    fn container_filters_match_like_docker() {
        let r = rec("web1", 100);
        let run = st(State::Running, None);
        let ex = st(State::Exited, Some(3));
        assert!(m(&filter(&[]), &r, &run));
        assert!(m(&filter(&["status=running"]), &r, &run));
        assert!(!m(&filter(&["status=running"]), &r, &ex));
        // Several values of one key: any; different keys: all.
        assert!(m(&filter(&["status=running", "status=exited"]), &r, &ex));
        assert!(!m(&filter(&["status=exited", "name=db"]), &r, &ex));
        assert!(m(&filter(&["exited=3"]), &r, &ex));
        assert!(!m(&filter(&["exited=0"]), &r, &ex));
        assert!(m(&filter(&["name=web"]), &r, &run));
        assert!(m(&filter(&["id=web10123"]), &r, &run));
        assert!(m(&filter(&["label=tier=front", "label=tier"]), &r, &run));
        assert!(!m(&filter(&["label=tier=back"]), &r, &run));
        assert!(m(&filter(&["ancestor=busybox:latest"]), &r, &run));
        assert!(m(&filter(&["ancestor=abcdef"]), &r, &run));
        assert!(!m(&filter(&["ancestor=alpine"]), &r, &run));
        assert!(m(&filter(&["volume=data"]), &r, &run));
        assert!(m(&filter(&["volume=/data"]), &r, &run));
        assert!(!m(&filter(&["volume=other"]), &r, &run));
        assert!(m(&filter(&["network=barge"]), &r, &run));
        assert!(!m(&filter(&["network=other"]), &r, &run));
        assert!(m(&filter(&["publish=8080"]), &r, &run));
        assert!(m(&filter(&["publish=8000-8090/tcp"]), &r, &run));
        assert!(!m(&filter(&["publish=8080/udp"]), &r, &run));
        assert!(m(&filter(&["expose=80"]), &r, &run));
        assert!(m(&filter(&["expose=443/tcp"]), &r, &run));
        assert!(!m(&filter(&["expose=8080"]), &r, &run));
        let mut f = filter(&[]);
        f.before = Some(200);
        assert!(m(&f, &r, &run));
        f.since = Some(100);
        assert!(!m(&f, &r, &run));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            PortRange::parse("publish", "80").unwrap(),
            PortRange {
                first: 80,
                last: 80,
                proto: "tcp".into()
            }
        );
        assert!(PortRange::parse("publish", "90-80").is_err());
        assert!(PortRange::parse("publish", "80/xyz").is_err());
        assert!(PortRange::parse("publish", "http").is_err());
    }
}
