//! Listing containers (`docker ps`, `GET /containers/json`): which ones, in which order.

use crate::db::ContainerRecord;
use crate::error::Result;
use crate::filters::container::ContainerFilter;
use crate::filters::Filters;
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

impl Engine {
    /// The containers `opts` asks for, newest first.
    pub fn list_containers(&self, opts: &ListOptions) -> Result<Vec<Listed>> {
        let filter = ContainerFilter::new(self, opts.filters.clone())?;
        let limit = if opts.latest { 1 } else { opts.limit };
        let all = opts.all || limit > 0 || filter.wants_all();
        let mut out = Vec::new();
        for rec in self.db.all()? {
            if limit > 0 && out.len() >= limit {
                break;
            }
            if self.being_created(&rec) {
                continue;
            }
            let st = self.status(&rec);
            if !all && !st.state.is_active() {
                continue;
            }
            let keep = filter.matches(
                &rec,
                &st,
                || crate::docker::list::ports(self, &rec),
                || self.network_names(&rec),
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

    /// The names and ids of the networks a container is on (for the `network` filter).
    fn network_names(&self, rec: &ContainerRecord) -> Vec<String> {
        let mut names: Vec<String> = rec
            .config
            .networks
            .iter()
            .map(|e| e.network.clone())
            .collect();
        if !rec.config.network.is_empty() {
            names.push(rec.config.network.clone());
        }
        names.extend(self.attachments(&rec.id).into_iter().map(|a| a.network_id));
        names
    }
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
