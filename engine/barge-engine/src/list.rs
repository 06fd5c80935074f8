//! Listing containers (`docker ps`, `GET /containers/json`): which ones, in which order.

use crate::db::ContainerRecord;
use crate::error::Result;
use crate::filters::container::ContainerFilter;
use crate::filters::Filters;
use crate::network::attach::Attachment;
use crate::network::ports::PortBinding;
use crate::status::Status;
use crate::Engine;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too (a status or exited filter, a limit, or `latest` imply it).
    pub all: bool,
    /// At most this many (the newest); 0 for no limit.
    pub limit: usize,
    /// Only the newest container (docker's `-l`).
    pub latest: bool,
    pub filters: Filters,
}

/// One listed container and its state.
#[derive(Debug, Clone)]
pub struct Listed {
    pub record: ContainerRecord,
    pub status: Status,
}

/// What a list keeps: `opts`' filters (checked, `before`/`since` resolved), its limit and
/// whether stopped containers are wanted. The same selection serves the engine's own list
/// and a daemon's cached entries (see `barge-api`'s list cache).
#[derive(Debug, Clone)]
pub struct Selector {
    filter: ContainerFilter,
    limit: usize,
    all: bool,
}

impl Selector {
    /// Whether `taken` containers are all the list may hold (its limit).
    pub fn full(&self, taken: usize) -> bool {
        self.limit > 0 && taken >= self.limit
    }

    /// Whether no filter is given (only `all` and the limit select).
    pub fn filters_nothing(&self) -> bool {
        self.filter.filters.is_empty()
    }

    /// Whether a container in this state is wanted (stopped ones only with `all`).
    pub fn wants(&self, st: &Status) -> bool {
        self.all || st.state.is_active()
    }

    /// Whether the container (not being created) is listed; `ports` and `networks` are read
    /// only when a filter needs them.
    pub fn keeps(
        &self,
        rec: &ContainerRecord,
        st: &Status,
        ports: impl FnOnce() -> (Vec<PortBinding>, Vec<(u16, String)>),
        networks: impl FnOnce() -> Vec<String>,
    ) -> bool {
        self.wants(st) && self.filter.matches(rec, st, ports, networks)
    }

    /// [`Selector::keeps`] for a container whose attachments are at hand.
    pub fn keeps_with(&self, rec: &ContainerRecord, st: &Status, atts: &[Attachment]) -> bool {
        self.keeps(
            rec,
            st,
            || crate::docker::list::ports_of(rec, atts),
            || network_names(rec, atts),
        )
    }
}

impl Engine {
    /// The selection `opts` asks for (an unknown filter, a bad value, or a `before`/`since`
    /// naming no container is an error).
    pub fn selector(&self, opts: &ListOptions) -> Result<Selector> {
        let filter = ContainerFilter::new(self, opts.filters.clone())?;
        let limit = if opts.latest { 1 } else { opts.limit };
        let all = opts.all || limit > 0 || filter.wants_all();
        Ok(Selector { filter, limit, all })
    }

    /// The containers `opts` asks for, newest first.
    pub fn list_containers(&self, opts: &ListOptions) -> Result<Vec<Listed>> {
        let sel = self.selector(opts)?;
        let mut out = Vec::new();
        for rec in self.db.all()? {
            if sel.full(out.len()) {
                break;
            }
            if self.being_created(&rec) {
                continue;
            }
            let st = self.status(&rec);
            if !sel.all && !st.state.is_active() {
                continue;
            }
            let keep = sel.keeps(
                &rec,
                &st,
                || crate::docker::list::ports(self, &rec),
                || network_names(&rec, &self.attachments(&rec.id)),
            );
            if keep {
                out.push(Listed {
                    record: rec,
                    status: st,
                });
            }
        }
        Ok(out)
    }
}

/// The names and ids of the networks a container is on (for the `network` filter).
pub fn network_names(rec: &ContainerRecord, atts: &[Attachment]) -> Vec<String> {
    let mut names: Vec<String> = rec
        .config
        .networks
        .iter()
        .map(|e| e.network.clone())
        .collect();
    if !rec.config.network.is_empty() {
        names.push(rec.config.network.clone());
    }
    names.extend(atts.iter().map(|a| a.network_id.clone()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_limits_and_orders() {
        let (_dir, engine) = crate::testing::engine();
        for (i, n) in ["a1", "b2", "c3"].iter().enumerate() {
            crate::testing::container(&engine, n, i as i64 + 1, Default::default());
        }
        let names = |opts: ListOptions| -> Vec<String> {
            engine
                .list_containers(&opts)
                .unwrap()
                .into_iter()
                .map(|l| l.record.name)
                .collect()
        };
        // Never started: only listed with all (or what implies it).
        assert!(names(ListOptions::default()).is_empty());
        let all = |f: &[&str]| ListOptions {
            all: true,
            filters: Filters::parse_args(f).unwrap(),
            ..Default::default()
        };
        assert_eq!(names(all(&[])), ["c3", "b2", "a1"]);
        assert_eq!(names(all(&["before=c3"])), ["b2", "a1"]);
        assert_eq!(names(all(&["since=a1", "before=c3"])), ["b2"]);
        assert_eq!(names(all(&["name=b", "name=a"])), ["b2", "a1"]);
        assert_eq!(
            names(ListOptions {
                filters: Filters::parse_args(&["status=created"]).unwrap(),
                ..Default::default()
            }),
            ["c3", "b2", "a1"]
        );
        assert_eq!(
            names(ListOptions {
                limit: 2,
                ..Default::default()
            }),
            ["c3", "b2"]
        );
        assert_eq!(
            names(ListOptions {
                latest: true,
                ..Default::default()
            }),
            ["c3"]
        );
        assert!(engine.list_containers(&all(&["status=sleepy"])).is_err());
        assert!(matches!(
            engine.list_containers(&all(&["before=nobody"])),
            Err(crate::Error::NoSuchContainer(_))
        ));
    }
}
