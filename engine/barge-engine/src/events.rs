//! The store's event journal (docker's event model, see `barge_events`) as the engine writes
//! and reads it: container, network and volume events from the engine, container `start`,
//! `oom`, `die` and `restart` from the shims, image events from the image store; and
//! [`Engine::subscribe`], which replays the journal and follows it with docker's filters
//! (for `docker events`, `wait`, CRI's container events, the edge agent).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use barge_events::event::now_nanos;
pub use barge_events::{Action, Actor, Event, Follower, Journal, JournalWatch, Type};

use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

/// docker's event filters: values of one kind are alternatives (any may match), kinds are
/// all required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `type=container|image|network|volume|daemon`.
    pub types: Vec<Type>,
    /// `event=ACTION` (docker's name: `die`, `exec_start`…).
    pub actions: Vec<String>,
    /// `container=ID|ID-PREFIX|NAME`.
    pub containers: Vec<String>,
    /// `image=NAME|ID`: the container's image, or the image of an image event.
    pub images: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE`, against the event's attributes.
    pub labels: Vec<String>,
    /// `network=ID|ID-PREFIX|NAME` (network events).
    pub networks: Vec<String>,
    /// `volume=NAME` (volume events).
    pub volumes: Vec<String>,
}

fn fuzzy(actor: &Actor, want: &str) -> bool {
    (!want.is_empty() && actor.id.starts_with(want))
        || actor.attributes.get("name").map(String::as_str) == Some(want)
}

fn strip_latest(s: &str) -> &str {
    s.strip_suffix(":latest").unwrap_or(s)
}

impl Filters {
    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &Event) -> bool {
        let any = |v: &[String], f: &dyn Fn(&str) -> bool| v.is_empty() || v.iter().any(|x| f(x));
        let a = &ev.actor;
        (self.types.is_empty() || self.types.contains(&ev.typ))
            && any(&self.actions, &|x| {
                x.parse::<Action>().is_ok_and(|want| want == ev.action)
            })
            && any(&self.containers, &|x| fuzzy(a, x))
            && any(&self.images, &|x| {
                let name = match ev.typ {
                    Type::Image => a.attributes.get("name").map(String::as_str),
                    _ => a.attributes.get("image").map(String::as_str),
                };
                (ev.typ == Type::Image && a.id == x)
                    || name.is_some_and(|n| strip_latest(n) == strip_latest(x))
            })
            && any(&self.labels, &|x| match x.split_once('=') {
                Some((k, v)) => a.attributes.get(k).map(String::as_str) == Some(v),
                None => a.attributes.contains_key(x),
            })
            && any(&self.networks, &|x| ev.typ == Type::Network && fuzzy(a, x))
            && any(&self.volumes, &|x| ev.typ == Type::Volume && fuzzy(a, x))
    }
}

/// What to subscribe to.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// Replay the journal's events from this time (nanoseconds since the epoch) first;
    /// `None`: only events from now on.
    pub since: Option<i64>,
    /// End after this time (nanoseconds since the epoch); `None`: never.
    pub until: Option<i64>,
    pub filters: Filters,
}

/// What [`Subscription::next_timeout`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Event(Event),
    /// Nothing within the time asked.
    Timeout,
    /// `until` has passed: no more events will come.
    End,
}

/// Events as they happen (after the replay from `since`): a blocking iterator.
pub struct Subscription {
    follower: Follower,
    opts: SubscribeOptions,
    ended: bool,
}

impl Subscription {
    /// How long until the subscription's `until` (then [`Next::End`] comes without any
    /// change to the journal); `None` without `until`.
    pub fn until_in(&self) -> Option<Duration> {
        self.opts.until.map(|u| {
            let left = u.saturating_sub(now_nanos());
            Duration::from_nanos(u64::try_from(left).unwrap_or(0))
        })
    }

    /// Block until the journal may have changed or `timeout` has passed: what came is then
    /// taken with a zero timeout. (A passive subscription sleeps the whole `timeout`.)
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        self.follower
            .wait(timeout)
            .map_err(|e| Error::Journal(format!("wait for events: {e}")))
    }

    /// The next matching event, waiting at most `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Next> {
        self.next_until(Some(Instant::now() + timeout))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Next> {
        loop {
            if self.ended {
                return Ok(Next::End);
            }
            let now = Instant::now();
            // Wait no longer than until `until`.
            let to_until = self.opts.until.map(|u| {
                let left = u.saturating_sub(now_nanos());
                Duration::from_nanos(u64::try_from(left).unwrap_or(0))
            });
            let to_deadline = deadline.map(|d| d.saturating_duration_since(now));
            let wait = match (to_until, to_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let got = self
                .follower
                .next_timeout(wait)
                .map_err(|e| Error::Journal(format!("read the event journal: {e}")))?;
            match got {
                Some(ev) => {
                    if self.opts.until.is_some_and(|u| ev.time_nano > u) {
                        // Writers' clocks interleave a little: only a live event past
                        // `until` ends the subscription.
                        if self.opts.until.is_some_and(|u| now_nanos() > u) {
                            self.ended = true;
                        }
                        continue;
                    }
                    if self.opts.since.is_some_and(|s| ev.time_nano < s) {
                        continue;
                    }
                    if self.opts.filters.matches(&ev) {
                        return Ok(Next::Event(ev));
                    }
                }
                None => {
                    if self.opts.until.is_some_and(|u| now_nanos() >= u) {
                        self.ended = true;
                        return Ok(Next::End);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(Next::Timeout);
                    }
                }
            }
        }
    }
}

impl Iterator for Subscription {
    type Item = Result<Event>;

    /// Blocks until the next matching event; ends after `until`.
    fn next(&mut self) -> Option<Result<Event>> {
        match self.next_until(None) {
            Ok(Next::Event(ev)) => Some(Ok(ev)),
            Ok(Next::Timeout) | Ok(Next::End) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

fn subscription(
    follower: std::io::Result<Follower>,
    opts: &SubscribeOptions,
) -> Result<Subscription> {
    let follower =
        follower.map_err(|e| Error::Journal(format!("follow the event journal: {e}")))?;
    Ok(Subscription {
        follower,
        opts: opts.clone(),
        ended: false,
    })
}

/// The attributes of a container's events: its name, image and labels (docker's).
pub fn container_attributes(rec: &ContainerRecord) -> BTreeMap<String, String> {
    let mut a = rec.config.labels.clone();
    a.insert("name".into(), rec.name.clone());
    a.insert("image".into(), rec.config.image.clone());
    a
}

impl Engine {
    /// The store's event journal.
    pub fn journal(&self) -> Journal {
        Journal::in_store(&self.paths.root)
    }

    /// Subscribe to the journal's events: those from `since` (if given), then new ones as
    /// they are appended (by any process), filtered.
    pub fn subscribe(&self, opts: &SubscribeOptions) -> Result<Subscription> {
        subscription(Follower::open(&self.journal(), opts.since.is_some()), opts)
    }

    /// A subscription that never waits (`next_timeout` returns what is there): for a server
    /// that follows many, woken by one [`Engine::watch_journal`] made before them.
    pub fn subscribe_passive(&self, opts: &SubscribeOptions) -> Result<Subscription> {
        subscription(
            Follower::open_passive(&self.journal(), opts.since.is_some()),
            opts,
        )
    }

    /// A watch on the journal: its fd turns readable when events are appended.
    pub fn watch_journal(&self) -> Result<JournalWatch> {
        JournalWatch::new(&self.journal())
            .map_err(|e| Error::Journal(format!("watch the event journal: {e}")))
    }

    /// Append an event. A journal that can't be written loses the event (with a warning):
    /// the operation it reports has happened either way.
    pub fn emit(&self, ev: &Event) {
        if let Err(e) = self.journal().append(ev) {
            tracing::warn!("event {} {}: {e}", ev.typ, ev.action);
        }
    }

    /// Append a container event with the container's attributes and `extra` ones.
    pub(crate) fn emit_container(
        &self,
        rec: &ContainerRecord,
        action: Action,
        extra: &[(&str, String)],
    ) {
        let ev = Event::now(Type::Container, action, rec.id.clone())
            .attrs(container_attributes(rec))
            .attrs(extra.iter().map(|(k, v)| (*k, v.clone())));
        self.emit(&ev);
    }

    /// Append a network event (`name` attribute, and `container` for connect/disconnect).
    pub(crate) fn emit_network(
        &self,
        id: &str,
        name: &str,
        action: Action,
        container: Option<&str>,
    ) {
        let mut ev = Event::now(Type::Network, action, id)
            .attr("name", name)
            .attr("type", "bridge");
        if let Some(c) = container {
            ev = ev.attr("container", c);
        }
        self.emit(&ev);
    }

    /// Append a volume event.
    pub(crate) fn emit_volume(&self, name: &str, action: Action) {
        self.emit(&Event::now(Type::Volume, action, name).attr("driver", "local"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn die(id: &str, name: &str) -> Event {
        Event::now(Type::Container, Action::Die, id)
            .attr("name", name)
            .attr("image", "busybox:latest")
            .attr("com.example.role", "web")
    }

    #[test]
    fn filters_like_docker() {
        let ev = die("abcdef0123", "web1");
        let f = |f: Filters| f.matches(&ev);
        assert!(f(Filters::default()));
        assert!(f(Filters {
            types: vec![Type::Image, Type::Container],
            ..Default::default()
        }));
        assert!(!f(Filters {
            types: vec![Type::Image],
            ..Default::default()
        }));
        assert!(f(Filters {
            actions: vec!["start".into(), "die".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            actions: vec!["start".into()],
            ..Default::default()
        }));
        for c in ["abcdef0123", "abc", "web1"] {
            assert!(f(Filters {
                containers: vec![c.into()],
                ..Default::default()
            }));
        }
        assert!(!f(Filters {
            containers: vec!["web".into()],
            ..Default::default()
        }));
        assert!(f(Filters {
            images: vec!["busybox".into()],
            ..Default::default()
        }));
        assert!(f(Filters {
            labels: vec!["com.example.role=web".into()],
            ..Default::default()
        }));
        assert!(f(Filters {
            labels: vec!["com.example.role".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            labels: vec!["com.example.role=db".into()],
            ..Default::default()
        }));
        // Kinds are all required.
        assert!(!f(Filters {
            containers: vec!["web1".into()],
            actions: vec!["start".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            networks: vec!["web1".into()],
            ..Default::default()
        }));
        let net = Event::now(Type::Network, Action::Connect, "n0123").attr("name", "front");
        assert!(Filters {
            networks: vec!["front".into()],
            ..Default::default()
        }
        .matches(&net));
    }
}
