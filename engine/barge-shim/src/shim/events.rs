//! The container's events the shim writes to the store's journal (`start`, `oom`, `die`,
//! `restart`, `health_status`), and the OOM-kill counter of its memory cgroup (read before the runtime deletes
//! the cgroup at the end of each run).

use std::path::PathBuf;

use barge_events::{Action, Event, Journal, Type};
use barge_runtime::cgroups::{Driver, Placement};
use serde::Deserialize;

use crate::config::ShimConfig;

/// Append a container event with the container's attributes and `extra` ones. A journal that
/// can't be written loses the event; the container is served either way.
pub fn emit(cfg: &ShimConfig, action: Action, extra: &[(&str, String)]) {
    append(cfg, event(cfg, action, extra));
}

/// [`emit`] with docker's detail after the action's name (`health_status: healthy`).
pub fn emit_detail(cfg: &ShimConfig, action: Action, detail: &str, extra: &[(&str, String)]) {
    append(cfg, event(cfg, action, extra).detail(detail));
}

fn event(cfg: &ShimConfig, action: Action, extra: &[(&str, String)]) -> Event {
    Event::now(Type::Container, action, cfg.id.clone())
        .attrs(cfg.event_attributes.clone())
        .attrs(extra.iter().map(|(k, v)| (*k, v.clone())))
}

fn append(cfg: &ShimConfig, ev: Event) {
    let Some(dir) = &cfg.journal else { return };
    let _ = Journal::new(dir).append(&ev);
}

/// The file holding the container's OOM-kill counter: v1 `memory.oom_control`, v2
/// `memory.events` (both have an `oom_kill N` line). None without a memory cgroup.
pub fn oom_counter_file(cfg: &ShimConfig) -> Option<PathBuf> {
    #[derive(Deserialize)]
    struct RuntimeState {
        cgroup: Placement,
    }
    let path = cfg.runtime_root.join(&cfg.id).join("state.json");
    let data = std::fs::read(&path).ok()?;
    let st: RuntimeState = serde_json::from_slice(&data).ok()?;
    let (driver, dir) = st.cgroup.dir_for("memory")?;
    Some(dir.join(match driver {
        Driver::V1 => "memory.oom_control",
        Driver::V2 => "memory.events",
    }))
}

/// The OOM-kill count in a counter file (0 when it can't be read).
pub fn oom_kills(file: Option<&PathBuf>) -> u64 {
    let Some(file) = file else { return 0 };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| parse_oom_kill(&s))
        .unwrap_or(0)
}

fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_oom_kill_of_v1_and_v2() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(super::parse_oom_kill(v1), Some(2));
        assert_eq!(super::parse_oom_kill(v2), Some(1));
        assert_eq!(super::parse_oom_kill("oom 3\n"), None);
    }
}
