//! `docker ps`: one container's entry of `GET /containers/json`, and the texts `docker ps`
//! shows (STATUS, COMMAND, PORTS).

use serde_json::{json, Value};

use crate::db::ContainerRecord;
use crate::health::HealthStatus;
use crate::network::attach::Attachment;
use crate::network::ports::{format_ps, parse_exposed, PortBinding};
use crate::status::{State, Status};
use crate::Engine;

/// docker's STATUS column ("Up 3 seconds", "Exited (0) 2 minutes ago"), at `now` (unix
/// seconds).
pub fn status_text(st: &Status, now: i64) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(super::time::parse_rfc3339)
            .map(|t| now - t)
            .unwrap_or(0)
    };
    let human = super::time::human_duration;
    match st.state {
        State::Created => "Created".into(),
        State::Running if st.shim_lost => {
            format!("Up {} (shim lost)", human(since(&st.started_at)))
        }
        State::Running => {
            let up = format!("Up {}", human(since(&st.started_at)));
            match st.health {
                None => up,
                Some(HealthStatus::Starting) => format!("{up} (health: starting)"),
                Some(h) => format!("{up} ({})", h.as_str()),
            }
        }
        State::Paused => format!("Up {} (Paused)", human(since(&st.started_at))),
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code.unwrap_or(0),
            human(since(&st.finished_at))
        ),
        State::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code.unwrap_or(0),
            human(since(&st.finished_at))
        ),
        State::Dead => "Dead".into(),
    }
}

/// The COMMAND: entrypoint and cmd joined by spaces.
pub fn command_text(rec: &ContainerRecord) -> String {
    rec.config
        .entrypoint
        .iter()
        .chain(&rec.config.cmd)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The container's published ports (while it runs) and its exposed ones.
pub fn ports(engine: &Engine, rec: &ContainerRecord) -> (Vec<PortBinding>, Vec<(u16, String)>) {
    ports_of(rec, &engine.attachments(&rec.id))
}

/// [`ports`] from the container's attachments, already read.
pub fn ports_of(
    rec: &ContainerRecord,
    atts: &[Attachment],
) -> (Vec<PortBinding>, Vec<(u16, String)>) {
    let exposed = parse_exposed(&rec.config.exposed).unwrap_or_default();
    let bindings = atts.iter().flat_map(|a| a.ports.iter().cloned()).collect();
    (bindings, exposed)
}

/// docker ps's PORTS: published ports of the running container, exposed ones otherwise.
pub fn ports_text(engine: &Engine, rec: &ContainerRecord) -> String {
    let (bindings, exposed) = ports(engine, rec);
    format_ps(&bindings, &exposed)
}

/// The list's `Ports`: `[{IP, PrivatePort, PublicPort, Type}]`, exposed but unpublished
/// ports without IP and PublicPort.
pub fn ports_list(bindings: &[PortBinding], exposed: &[(u16, String)]) -> Vec<Value> {
    let mut out: Vec<Value> = bindings
        .iter()
        .map(|b| {
            json!({
                "IP": if b.host_ip.is_empty() { "0.0.0.0" } else { b.host_ip.as_str() },
                "PrivatePort": b.container_port,
                "PublicPort": b.host_port,
                "Type": b.proto,
            })
        })
        .collect();
    for (p, proto) in exposed {
        if !bindings
            .iter()
            .any(|b| b.container_port == *p && &b.proto == proto)
        {
            out.push(json!({"PrivatePort": p, "Type": proto}));
        }
    }
    out
}

/// One element of `GET /containers/json`, with `Status` at `now` (unix seconds).
pub fn entry(engine: &Engine, rec: &ContainerRecord, st: &Status, now: i64) -> Value {
    entry_with(engine, rec, st, &engine.attachments(&rec.id), now)
}

/// [`entry`] for a container whose attachments are at hand.
pub fn entry_with(
    engine: &Engine,
    rec: &ContainerRecord,
    st: &Status,
    atts: &[Attachment],
    now: i64,
) -> Value {
    let c = &rec.config;
    let (bindings, exposed) = ports_of(rec, atts);
    let network_mode = if c.network.is_empty() {
        "bridge"
    } else {
        c.network.as_str()
    };
    json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": command_text(rec),
        "Created": rec.created_secs(),
        "Ports": ports_list(&bindings, &exposed),
        "Labels": c.labels,
        "State": st.state.as_str(),
        "Status": status_text(st, now),
        "HostConfig": {"NetworkMode": network_mode},
        "NetworkSettings": {"Networks": super::container::networks_of(rec, atts)},
        "Mounts": c.mounts.iter().map(|m| super::container::mount_point(engine, m)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State, started: Option<&str>, finished: Option<&str>) -> Status {
        Status {
            state,
            pid: 0,
            exit_code: Some(3),
            started_at: started.map(str::to_string),
            finished_at: finished.map(str::to_string),
            restart_count: 0,
            error: None,
            shim_pid: 0,
            oom_killed: false,
            shim_lost: false,
            health: None,
        }
    }

    #[test]
    fn status_texts_like_docker_ps() {
        let t0 = "2024-01-02T03:04:05Z";
        let now = super::super::time::parse_rfc3339(t0).unwrap_or_default();
        assert_eq!(
            status_text(&status(State::Running, Some(t0), None), now + 3),
            "Up 3 seconds"
        );
        assert_eq!(
            status_text(&status(State::Exited, Some(t0), Some(t0)), now + 120),
            "Exited (3) 2 minutes ago"
        );
        assert_eq!(
            status_text(&status(State::Paused, Some(t0), None), now + 1),
            "Up 1 second (Paused)"
        );
        assert_eq!(
            status_text(&status(State::Created, None, None), now),
            "Created"
        );
        for (h, text) in [
            (HealthStatus::Starting, "Up 3 seconds (health: starting)"),
            (HealthStatus::Healthy, "Up 3 seconds (healthy)"),
            (HealthStatus::Unhealthy, "Up 3 seconds (unhealthy)"),
        ] {
            let st = Status {
                health: Some(h),
                ..status(State::Running, Some(t0), None)
            };
            assert_eq!(status_text(&st, now + 3), text);
        }
    }

    #[test]
    fn ports_list_shapes() {
        let b = PortBinding {
            host_ip: String::new(),
            host_port: 8080,
            container_port: 80,
            proto: "tcp".into(),
        };
        let l = ports_list(&[b], &[(80, "tcp".into()), (443, "tcp".into())]);
        assert_eq!(
            l,
            vec![
                json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
                json!({"PrivatePort": 443, "Type": "tcp"}),
            ]
        );
    }
}
