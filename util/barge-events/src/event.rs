//! One event: what happened (`Type`, `Action`) to what (`Actor`: id and attributes), and when.
//! Its journal line is docker's event JSON, so the daemon can serve lines as they are:
//!
//! ```json
//! {"status":"die","id":"…","from":"busybox","Type":"container","Action":"die",
//!  "Actor":{"ID":"…","Attributes":{"exitCode":"3","image":"busybox","name":"x"}},
//!  "scope":"local","time":1700000000,"timeNano":1700000000123456789}
//! ```
//!
//! (`status`, `id` and `from` are docker's legacy fields, written for container events only.)

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Container,
    Image,
    Network,
    Volume,
    Daemon,
    /// A pod (create, start, stop, destroy).
    Pod,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Container => "container",
            Type::Image => "image",
            Type::Network => "network",
            Type::Volume => "volume",
            Type::Daemon => "daemon",
            Type::Pod => "pod",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Type {
    type Err = String;
    fn from_str(s: &str) -> Result<Type, String> {
        Ok(match s {
            "container" => Type::Container,
            "image" => Type::Image,
            "network" => Type::Network,
            "volume" => Type::Volume,
            "daemon" => Type::Daemon,
            "pod" => Type::Pod,
            _ => return Err(format!("unknown event type {s:?}")),
        })
    }
}

macro_rules! actions {
    ($($(#[$m:meta])* $v:ident = $s:literal,)*) => {
        /// What happened, with docker's action names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$m])* $v,)*
        }

        impl Action {
            /// docker's name of the action (`die`, `exec_start`, …).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$v => $s,)*
                }
            }
        }

        impl FromStr for Action {
            type Err = String;
            /// docker's name; an exec action may carry its command (`exec_start: sh -c …`).
            fn from_str(s: &str) -> Result<Action, String> {
                let name = s.split_once(':').map_or(s, |(a, _)| a).trim();
                match name {
                    $($s => Ok(Action::$v),)*
                    _ => Err(format!("unknown event action {s:?}")),
                }
            }
        }
    };
}

actions! {
    // Containers.
    Create = "create",
    Start = "start",
    /// The container's process ended (attribute `exitCode`).
    Die = "die",
    /// The kernel's OOM killer killed a process of the container (written before its `die`).
    Oom = "oom",
    /// A signal was sent to the container (attribute `signal`).
    Kill = "kill",
    Stop = "stop",
    /// The container was removed.
    Destroy = "destroy",
    Restart = "restart",
    Pause = "pause",
    Unpause = "unpause",
    /// Attributes `name` (new) and `oldName`.
    Rename = "rename",
    Attach = "attach",
    Detach = "detach",
    Resize = "resize",
    Update = "update",
    Top = "top",
    Export = "export",
    Commit = "commit",
    Copy = "copy",
    ExecCreate = "exec_create",
    ExecStart = "exec_start",
    ExecDie = "exec_die",
    HealthStatus = "health_status",
    // Images.
    Pull = "pull",
    Push = "push",
    Tag = "tag",
    Untag = "untag",
    Delete = "delete",
    Load = "load",
    Import = "import",
    Save = "save",
    // Networks.
    Connect = "connect",
    Disconnect = "disconnect",
    // Volumes.
    Mount = "mount",
    Unmount = "unmount",
    // Any type.
    Prune = "prune",
    Reload = "reload",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object an event is about: its id (container id, image id or reference, network id,
/// volume name) and attributes (`name`, `image`, `exitCode`, `signal`, `container`, labels…).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub attributes: BTreeMap<String, String>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the Unix epoch.
    pub time_nano: i64,
    pub typ: Type,
    pub action: Action,
    /// What docker writes after the action's name (`health_status: healthy`, `exec_start: sh
    /// -c true`); None for a bare action.
    pub detail: Option<String>,
    pub actor: Actor,
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// docker's JSON form of an event (field names and order as dockerd writes them).
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(rename = "Type")]
    typ: Type,
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Actor")]
    actor: WireActor,
    scope: String,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Serialize, Deserialize)]
struct WireActor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event that happens now.
    pub fn now(typ: Type, action: Action, id: impl Into<String>) -> Event {
        Event {
            time_nano: now_nanos(),
            typ,
            action,
            detail: None,
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
        }
    }

    /// Set what follows the action's name (docker's `health_status: healthy`).
    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }

    /// docker's action string: the name, and the detail after `: ` if any.
    pub fn action_text(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {d}", self.action.as_str()),
            None => self.action.as_str().to_string(),
        }
    }

    /// Add an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }

    /// Add attributes.
    pub fn attrs<K: Into<String>, V: Into<String>>(
        mut self,
        kv: impl IntoIterator<Item = (K, V)>,
    ) -> Event {
        for (k, v) in kv {
            self.actor.attributes.insert(k.into(), v.into());
        }
        self
    }

    /// An attribute's value.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.actor.attributes.get(key).map(String::as_str)
    }

    /// The `exitCode` attribute of a `die` (or `exec_die`) event.
    pub fn exit_code(&self) -> Option<i32> {
        self.attribute("exitCode").and_then(|c| c.parse().ok())
    }

    fn wire(&self) -> Wire {
        let container = self.typ == Type::Container;
        Wire {
            status: container.then(|| self.action_text()),
            id: container.then(|| self.actor.id.clone()),
            from: container
                .then(|| self.attribute("image").map(str::to_string))
                .flatten(),
            typ: self.typ,
            action: self.action_text(),
            actor: WireActor {
                id: self.actor.id.clone(),
                attributes: self.actor.attributes.clone(),
            },
            scope: "local".into(),
            time: self.time_nano.div_euclid(1_000_000_000),
            time_nano: self.time_nano,
        }
    }

    /// docker's JSON object for this event.
    pub fn to_docker_json(&self) -> serde_json::Value {
        serde_json::to_value(self.wire()).unwrap_or(serde_json::Value::Null)
    }

    /// The journal line: docker's JSON and a newline.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(&self.wire()).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parse a journal line (or any docker event JSON).
    pub fn parse(line: &[u8]) -> Result<Event, String> {
        let w: Wire = serde_json::from_slice(line).map_err(|e| format!("parse event {e}"))?;
        Ok(Event {
            time_nano: w.time_nano,
            typ: w.typ,
            action: w.action.parse()?,
            detail: w
                .action
                .split_once(':')
                .map(|(_, d)| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            actor: Actor {
                id: w.actor.id,
                attributes: w.actor.attributes,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_json_round_trip() {
        let ev = Event {
            time_nano: 1_700_000_000_123_456_789,
            typ: Type::Container,
            action: Action::Die,
            detail: None,
            actor: Actor {
                id: "abc".into(),
                attributes: BTreeMap::new(),
            },
        }
        .attr("exitCode", "3")
        .attr("image", "busybox")
        .attr("name", "x");
        let line = ev.to_line();
        let text = String::from_utf8(line.clone()).unwrap();
        assert_eq!(
            text,
            "{\"status\":\"die\",\"id\":\"abc\",\"from\":\"busybox\",\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"exitCode\":\"3\",\"image\":\"busybox\",\"name\":\"x\"}},\"scope\":\"local\",\"time\":1700000000,\"timeNano\":1700000000123456789}\n"
        );
        let back = Event::parse(&line).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.exit_code(), Some(3));
        // Not a container: no legacy fields.
        let net = Event::now(Type::Network, Action::Connect, "n1").attr("container", "c");
        let v = net.to_docker_json();
        assert!(v.get("status").is_none() && v.get("id").is_none());
        assert_eq!(v["Type"], "network");
        assert_eq!(v["scope"], "local");
        for a in ["exec_start", "exec_start: sh -c true", "health_status"] {
            assert!(a.parse::<Action>().is_ok(), "{a}");
        }
        assert!("bogus".parse::<Action>().is_err());
        // docker's health event: the status after the action's name, both ways.
        let h = Event::now(Type::Container, Action::HealthStatus, "c").detail("healthy");
        let v = h.to_docker_json();
        assert_eq!(v["Action"], "health_status: healthy");
        assert_eq!(v["status"], "health_status: healthy");
        let back = Event::parse(&h.to_line()).unwrap();
        assert_eq!(back.action, Action::HealthStatus);
        assert_eq!(back.detail.as_deref(), Some("healthy"));
        assert!(Event::parse(b"{\"Type\":\"container\"").is_err());
    }
}
