//! The daemon's cache of what `GET /containers/json` lists: each container's row (config
//! decoded), its status and its network attachments, so that `docker ps` with a thousand
//! containers does not read a thousand state files, `/proc` entries, attachment directories
//! and JSON configs each time.
//!
//! It caches only what events keep fresh (the roadmap's rule). Before each use, in the
//! request itself:
//! - the store's event journal is read up to its end (a subscription, `Engine::subscribe`):
//!   every container event (from the daemon, the daemonless CLI, the shims) and every
//!   network connect/disconnect names a container whose entry is read again. Reading the
//!   journal in the request, not in a background task, means that whatever happened before
//!   the request is seen by it;
//! - what an event can miss is checked cheaply:
//!   - SQLite's `data_version` says whether another process committed to the database since
//!     the last look; if so, the rows' ids, names and readiness are compared with the
//!     entries (no config decoded);
//!   - each running container's shim is held by a pidfd, and one `poll` over them says
//!     which shims ended (a shim SIGKILLed writes no `die`);
//!   - entries in a state that no event ends are read again at every use: dead (half made),
//!     shim lost, starting, exited with its network not torn down yet (the exit helper
//!     tears it down after the `die`), being created;
//!   - a journal rotated twice since the last look may have lost events: the cache is
//!     rebuilt.
//!
//! The daemonless CLI has no cache: it reads the store directly.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use barge_engine::db::ContainerRecord;
use barge_engine::docker;
use barge_engine::events::{Action, Event, Next, SubscribeOptions, Subscription, Type};
use barge_engine::list::ListOptions;
use barge_engine::network::attach::Attachment;
use barge_engine::status::{State, Status};
use barge_engine::{Engine, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// One cached container. Small on purpose (a daemon may hold thousands): the decoded
/// config is not kept; a list with filters reads the rows again (see [`ListCache::list`]).
struct Entry {
    id: Box<str>,
    name: Box<str>,
    created: i64,
    ready: bool,
    status: Status,
    atts: Vec<Attachment>,
    /// Its `GET /containers/json` element but for `Status` (which changes with the time),
    /// without the closing brace.
    json: Box<str>,
    /// The shim's pidfd while the container is active: readable once the shim has ended.
    shim: Option<OwnedFd>,
}

/// A listed container, as the cache holds it.
pub struct Listed<'a> {
    pub id: &'a str,
    pub status: &'a Status,
    pub atts: &'a [Attachment],
    /// Its `GET /containers/json` element, but for `Status` and the closing brace (see
    /// [`Listed::write_json`]).
    pub json: &'a str,
}

impl Listed<'_> {
    /// Append its `GET /containers/json` element with `Status` at `now` (unix seconds),
    /// and `extra` members (`,"SizeRw":1`…, or nothing).
    pub fn write_json(&self, out: &mut Vec<u8>, now: i64, extra: &str) {
        out.extend_from_slice(self.json.as_bytes());
        out.extend_from_slice(b"\"Status\":");
        let text = docker::list::status_text(self.status, now);
        // A string always serializes.
        let _ = serde_json::to_writer(&mut *out, &text);
        out.extend_from_slice(extra.as_bytes());
        out.push(b'}');
    }
}

impl Entry {
    fn listed(&self) -> Listed<'_> {
        Listed {
            id: &self.id,
            status: &self.status,
            atts: &self.atts,
            json: &self.json,
        }
    }

    /// No event reliably follows the next change of this entry: read it again at each use.
    fn unsettled(&self) -> bool {
        match self.status.state {
            State::Running | State::Paused | State::Restarting => self.shim.is_none(),
            // Starting (its shim runs): a `start` or a `die` follows, but it is brief.
            State::Created => self.status.shim_pid > 0,
            // The exit helper tears the network down after the `die`, silently.
            State::Exited => !self.atts.is_empty(),
            State::Dead => true,
        }
    }
}

/// A journal file's identity (inode and birth time: an inode number alone is reused).
type FileId = (u64, Option<SystemTime>);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.created().ok()))
}

struct Cache {
    sub: Subscription,
    /// The journal's current file at the last look.
    journal: Option<FileId>,
    data_version: i64,
    entries: HashMap<Box<str>, Box<Entry>>,
    /// Rows a create is making right now (not listed, looked at again at each use).
    creating: HashSet<String>,
    /// Ids to read again.
    dirty: HashSet<String>,
    /// Shims held by a pidfd.
    pidfds: usize,
}

/// Container events after which a listed entry is unchanged.
fn leaves_entry(a: Action) -> bool {
    matches!(
        a,
        Action::ExecCreate
            | Action::ExecStart
            | Action::ExecDie
            | Action::Attach
            | Action::Detach
            | Action::Resize
            | Action::Top
            | Action::Export
            | Action::Commit
            | Action::Copy
    )
}

/// The cache, built at the first list (a daemon nobody lists from holds nothing).
pub struct ListCache {
    cache: Mutex<Option<Cache>>,
    /// At most this many pidfds (half the fds the daemon may open: connections need the
    /// rest); shims past it are not held, their entries are read at each use.
    max_pidfds: usize,
}

impl Default for ListCache {
    fn default() -> Self {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        ListCache {
            cache: Mutex::new(None),
            max_pidfds: usize::try_from(soft / 2).unwrap_or(512),
        }
    }
}

impl ListCache {
    /// The containers `opts` asks for, newest first, each made into a `T` by `each`. As
    /// fresh as the store at the time of the call.
    pub fn list<T>(
        &self,
        engine: &Engine,
        opts: &ListOptions,
        mut each: impl FnMut(&Listed<'_>) -> T,
    ) -> Result<Vec<T>> {
        let sel = engine.selector(opts)?;
        let mut guard = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.max_pidfds;
        let cache = match guard.take() {
            Some(mut c) => match c.refresh(engine, max) {
                Ok(()) => c,
                // Events may have been lost (the journal could not be read, or ran ahead):
                // start over.
                Err(_) => Cache::fresh(engine, max)?,
            },
            None => Cache::fresh(engine, max)?,
        };
        let cache = guard.insert(cache);
        let mut rows: Vec<&Entry> = cache.entries.values().map(|e| &**e).collect();
        rows.sort_unstable_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let mut out = Vec::new();
        if sel.filters_nothing() {
            for e in rows {
                if sel.full(out.len()) {
                    break;
                }
                if sel.wants(&e.status) {
                    out.push(each(&e.listed()));
                }
            }
            return Ok(out);
        }
        // Filters look at the config: read the rows (decoding them is the one cost a
        // filtered list keeps), in the cache's order.
        let mut records: HashMap<String, ContainerRecord> = engine
            .db
            .all()?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for e in rows {
            if sel.full(out.len()) {
                break;
            }
            let Some(rec) = records.remove(&*e.id) else {
                continue;
            };
            if sel.keeps_with(&rec, &e.status, &e.atts) {
                out.push(each(&e.listed()));
            }
        }
        Ok(out)
    }
}

impl Cache {
    /// An empty cache following the journal from now: every row is read at the first
    /// refresh (its `data_version` is unknown).
    fn build(engine: &Engine) -> Result<Cache> {
        // Follow first, then read: nothing that happens in between is missed.
        let journal = file_id(&engine.journal().current());
        let sub = engine.subscribe(&SubscribeOptions::default())?;
        Ok(Cache {
            sub,
            journal,
            data_version: i64::MIN,
            entries: HashMap::new(),
            creating: HashSet::new(),
            dirty: HashSet::new(),
            pidfds: 0,
        })
    }

    /// A cache built and read now.
    fn fresh(engine: &Engine, max_pidfds: usize) -> Result<Cache> {
        let mut c = Cache::build(engine)?;
        c.refresh(engine, max_pidfds)?;
        Ok(c)
    }

    /// Apply what happened since the last look (see the module's notes).
    fn refresh(&mut self, engine: &Engine, max_pidfds: usize) -> Result<()> {
        self.read_journal(engine)?;
        let v = engine.db.data_version()?;
        if v != self.data_version {
            // Read before the rows: a commit after it is seen next time.
            self.data_version = v;
            self.sync_rows(engine)?;
        }
        self.check_shims();
        for (id, e) in &self.entries {
            if e.unsettled() {
                self.dirty.insert(id.to_string());
            }
        }
        self.dirty.extend(self.creating.iter().cloned());
        let dirty = std::mem::take(&mut self.dirty);
        for id in dirty {
            self.reload(engine, &id, max_pidfds);
        }
        Ok(())
    }

    /// Every event appended since the last look marks the containers it names.
    fn read_journal(&mut self, engine: &Engine) -> Result<()> {
        let journal = engine.journal();
        let now = file_id(&journal.current());
        if let Some(seen) = self.journal {
            // Rotated more than once since: the follower may have missed a whole file.
            if Some(seen) != now && Some(seen) != file_id(&journal.rotated()) {
                return Err(Error::Journal(
                    "the event journal was rotated twice since the last list".into(),
                ));
            }
        }
        self.journal = now.or(self.journal);
        loop {
            match self.sub.next_timeout(Duration::ZERO)? {
                Next::Event(ev) => self.note(&ev),
                Next::Timeout | Next::End => return Ok(()),
            }
        }
    }

    fn note(&mut self, ev: &Event) {
        match ev.typ {
            Type::Container if !leaves_entry(ev.action) => {
                self.dirty.insert(ev.actor.id.clone());
            }
            Type::Network => {
                if let Some(c) = ev.actor.attributes.get("container") {
                    self.dirty.insert(c.clone());
                }
            }
            _ => {}
        }
    }

    /// Another process committed: find the rows added, removed, renamed or made ready.
    fn sync_rows(&mut self, engine: &Engine) -> Result<()> {
        let rows = engine.db.summaries()?;
        let mut seen = HashSet::with_capacity(rows.len());
        for (id, name, ready) in rows {
            let known = match self.entries.get(id.as_str()) {
                Some(e) => *e.name == *name && e.ready == ready,
                None => !ready && self.creating.contains(&id),
            };
            if !known {
                self.dirty.insert(id.clone());
            }
            seen.insert(id);
        }
        let before = self.entries.len();
        self.entries.retain(|id, _| seen.contains(&**id));
        if self.entries.len() != before {
            self.count_pidfds();
        }
        self.creating.retain(|id| seen.contains(id));
        Ok(())
    }

    /// Shims that ended (their pidfd is readable) mark their containers.
    fn check_shims(&mut self) {
        let held: Vec<(&str, &OwnedFd)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| e.shim.as_ref().map(|fd| (&**id, fd)))
            .collect();
        if held.is_empty() {
            return;
        }
        let mut fds: Vec<PollFd> = held
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        let ended: Vec<String> = match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => Vec::new(),
            Ok(_) => held
                .iter()
                .zip(&fds)
                .filter(|(_, p)| p.revents().is_none_or(|r| !r.is_empty()))
                .map(|((id, _), _)| id.to_string())
                .collect(),
            // Not knowing which: read them all again.
            Err(_) => held.iter().map(|(id, _)| id.to_string()).collect(),
        };
        self.dirty.extend(ended);
    }

    fn count_pidfds(&mut self) {
        self.pidfds = self.entries.values().filter(|e| e.shim.is_some()).count();
    }

    /// Read container `id` again (gone: dropped).
    fn reload(&mut self, engine: &Engine, id: &str, max_pidfds: usize) {
        if let Some(old) = self.entries.remove(id) {
            if old.shim.is_some() {
                self.pidfds = self.pidfds.saturating_sub(1);
            }
        }
        self.creating.remove(id);
        let rec = match engine.db.find(id) {
            Ok(r) => r,
            Err(_) => return,
        };
        if rec.id != id {
            // An event named it otherwise (a prefix): key it by its id.
            return self.reload(engine, &rec.id.clone(), max_pidfds);
        }
        if engine.being_created(&rec) {
            self.creating.insert(rec.id);
            return;
        }
        let e = load(engine, rec, self.pidfds < max_pidfds);
        if e.shim.is_some() {
            self.pidfds += 1;
        }
        self.entries.insert(id.into(), Box::new(e));
    }
}

/// A container's entry, with a pidfd on its shim when it is active (and `pidfd` allows).
fn load(engine: &Engine, record: ContainerRecord, pidfd: bool) -> Entry {
    let mut status = engine.status(&record);
    let mut shim = None;
    if pidfd && status.state.is_active() && !status.shim_lost {
        if let Some(fd) = crate::sys::pidfd_open(status.shim_pid) {
            // Opened before this second look: if the state file still names that shim
            // (and its start time matches), the fd is that shim.
            let again = engine.status(&record);
            if again.shim_pid == status.shim_pid && again.state.is_active() && !again.shim_lost {
                shim = Some(fd);
            }
            status = again;
        }
    }
    let atts = engine.attachments(&record.id);
    let json = render(engine, &record, &status, &atts).into_boxed_str();
    Entry {
        id: record.id.into_boxed_str(),
        name: record.name.into_boxed_str(),
        created: record.created,
        ready: record.ready,
        status,
        atts,
        json,
        shim,
    }
}

/// The entry's element of `GET /containers/json` without `Status` and the closing brace,
/// ending in a comma: `{"Id":…,`.
fn render(engine: &Engine, rec: &ContainerRecord, st: &Status, atts: &[Attachment]) -> String {
    let mut v = docker::list::entry_with(engine, rec, st, atts, 0);
    if let Some(m) = v.as_object_mut() {
        m.remove("Status");
    }
    let mut s = v.to_string();
    if s.ends_with('}') {
        s.pop();
    }
    if s.len() > 1 {
        s.push(',');
    }
    s
}
