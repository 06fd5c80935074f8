//! `exec`: processes started in a running container, with docker's exec model: create (an id
//! and a recorded configuration), start (under the container's shim, detached or attached:
//! its stdio relayed on a socket; or in the foreground of a single-threaded caller), resize,
//! inspect (docker's `GET /exec/{id}/json`).
//!
//! Records live in the container's directory (`execs/<id>.json`, `execs/<id>.state.json`,
//! see `barge_shim::exec`). An exec started by the shim (detached or attached) is its child:
//! the shim reaps it and records its exit code, and the caller never forks; a foreground exec
//! is the caller's child and the caller records it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use barge_shim::exec::{self as files, ExecConfig, ExecState};
use barge_shim::protocol::Request;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use serde::Serialize;

use crate::container::Streams;
use crate::error::{Error, Result};
use crate::status::State;
use crate::Engine;

/// What the user asks for (`barge exec` flags, docker's ExecConfig).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    /// `KEY=VALUE` (or `KEY`, taken from our environment).
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}

/// docker's exec inspect (`GET /exec/{id}/json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub process_config: ProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i32,
    /// barge's additions: when it ran, and why it could not start.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    pub user: String,
}

impl Engine {
    /// Record a new exec in a running container; its id.
    pub fn exec_create(&self, key: &str, o: &ExecOptions) -> Result<String> {
        let rec = self.db.find(key)?;
        let st = self.status(&rec);
        if st.shim_lost {
            return Err(Error::ShimLost {
                id: rec.id.clone(),
                shim_pid: st.shim_pid,
            });
        }
        if st.state != State::Running {
            return Err(Error::BadState {
                id: rec.id.clone(),
                state: st.state.as_str().into(),
                hint: "cannot exec in a container that is not running".into(),
            });
        }
        if o.cmd.is_empty() {
            return Err(Error::Invalid("exec: no command given".into()));
        }
        let process = self.exec_process(&rec.id, o)?;
        let id = crate::names::new_id()?;
        let cfg = ExecConfig {
            id: id.clone(),
            container_id: rec.id.clone(),
            process,
            user: o.user.clone().unwrap_or_default(),
            privileged: o.privileged,
            tty: o.tty,
            open_stdin: o.interactive,
            detach: o.detach,
        };
        let dir = files::dir(&self.paths.container(&rec.id));
        prune_finished(&self.paths.container(&rec.id));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            what: "create directory",
            path: dir.clone(),
            source: e,
        })?;
        files::save(
            &files::config_path(&self.paths.container(&rec.id), &id),
            &cfg,
        )
        .map_err(Error::Other)?;
        self.emit_container(
            &rec,
            crate::events::Action::ExecCreate,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Start a created exec in the background, under the container's shim; its host pid once
    /// the program runs. Failing to run the program is [`Error::StartFailed`] with docker's
    /// code (127 not found, 126 not executable).
    pub fn exec_start_detached(&self, exec_id: &str) -> Result<i32> {
        let (cfg, _) = self.exec_find(exec_id)?;
        self.require_shim(&cfg.container_id)?;
        let mut sock = self.connect(&cfg.container_id)?;
        sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let shim_err = |e: std::io::Error| Error::Shim {
            id: cfg.container_id.clone(),
            msg: format!("start exec {exec_id}: {e}"),
        };
        sock.write_all(
            Request::Exec {
                id: exec_id.to_string(),
            }
            .line()
            .as_bytes(),
        )
        .map_err(shim_err)?;
        let mut answer = String::new();
        sock.read_to_string(&mut answer).map_err(shim_err)?;
        // The shim records the exec_start (before the exec_die it records too).
        parse_start_answer(&cfg.container_id, exec_id, answer.trim_end())
    }

    /// An exec event with its container's attributes.
    fn emit_exec(
        &self,
        container: &str,
        exec_id: &str,
        action: crate::events::Action,
        extra: &[(&str, String)],
    ) {
        if let Ok(rec) = self.db.find(container) {
            let mut attrs = vec![("execID", exec_id.to_string())];
            attrs.extend(extra.iter().cloned());
            self.emit_container(&rec, action, &attrs);
        }
    }

    /// Start a created exec under the container's shim with its stdio relayed on the returned
    /// socket, as [`Engine::attach_socket`] gives a container's: its output as frames (stdcopy
    /// headers, stream 1 stdout and 2 stderr; everything on 1 with a terminal), bytes written
    /// to the socket go to its stdin (with `s.stdin` and the exec's `-i`; shutting down the
    /// writing side closes that stdin), and a last `EXIT` frame carries its exit code. Returns
    /// once the program runs; failing to run it is [`Error::StartFailed`] with docker's code
    /// (127 not found, 126 not executable). Dropping the socket before the exit hangs the
    /// process up (SIGHUP). Never forks the caller: safe in a multi-threaded daemon.
    pub fn exec_start_attached(&self, exec_id: &str, s: Streams) -> Result<UnixStream> {
        self.exec_start_attached_sized(exec_id, s, None)
    }

    /// [`Engine::exec_start_attached`] whose terminal (with `-t`) has `size` (rows, columns)
    /// from the start (docker's `ConsoleSize`), so its first output already fits.
    pub fn exec_start_attached_sized(
        &self,
        exec_id: &str,
        s: Streams,
        size: Option<(u16, u16)>,
    ) -> Result<UnixStream> {
        let (cfg, _) = self.exec_find(exec_id)?;
        self.require_shim(&cfg.container_id)?;
        let mut sock = self.connect(&cfg.container_id)?;
        let shim_err = |e: std::io::Error| Error::Shim {
            id: cfg.container_id.clone(),
            msg: format!("start exec {}: {e}", cfg.id),
        };
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(shim_err)?;
        sock.write_all(
            Request::ExecAttach {
                id: cfg.id.clone(),
                stdin: s.stdin,
                stdout: s.stdout,
                stderr: s.stderr,
                size,
            }
            .line()
            .as_bytes(),
        )
        .map_err(shim_err)?;
        // The answer line, byte by byte: the frames that follow stay in the socket.
        let mut answer = Vec::new();
        let mut b = [0u8; 1];
        while answer.len() < 4096 {
            match sock.read(&mut b) {
                Ok(0) => break,
                Ok(_) if b[0] == b'\n' => break,
                Ok(_) => answer.push(b[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(shim_err(e)),
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        if answer.trim_end() == BAD_REQUEST {
            return Err(Error::ShimOutdated {
                id: cfg.container_id.clone(),
                what: "run attached execs",
            });
        }
        parse_start_answer(&cfg.container_id, &cfg.id, answer.trim_end())?;
        sock.set_read_timeout(None).map_err(shim_err)?;
        Ok(sock)
    }

    /// Set the terminal size of an attached exec started with a terminal.
    pub fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let (cfg, _) = self.exec_find(exec_id)?;
        let answer = self.request(
            &cfg.container_id,
            Request::ExecResize {
                id: cfg.id.clone(),
                rows,
                cols,
            },
            Some(Duration::from_secs(5)),
        )?;
        match answer.trim_end().split_once(' ') {
            None if answer.trim_end() == "ok" => Ok(()),
            _ if answer.trim_end() == BAD_REQUEST => Err(Error::ShimOutdated {
                id: cfg.container_id.clone(),
                what: "resize execs",
            }),
            Some(("err", rest)) => Err(Error::Shim {
                id: cfg.container_id.clone(),
                msg: format!(
                    "resize exec {}: {}",
                    cfg.id,
                    rest.split_once(' ').map_or(rest, |(_, m)| m)
                ),
            }),
            _ => Err(Error::Shim {
                id: cfg.container_id.clone(),
                msg: format!("resize exec {}: unexpected answer {answer:?}", cfg.id),
            }),
        }
    }

    /// Run a created exec in the foreground of the caller (which must be single-threaded:
    /// the runtime forks; a multi-threaded one uses [`Engine::exec_start_attached`], as
    /// `barge exec` now does too); its exit code. With a terminal, the caller's hangup, interrupt or
    /// terminate signals end the caller and hang up the process's terminal (docker's client);
    /// without, they are forwarded to the process. Without `-i` (and without a terminal) the
    /// caller's stdin is pointed at /dev/null first: the process gets no input, as docker's.
    pub fn exec_start_foreground(&self, exec_id: &str) -> Result<i32> {
        let (cfg, _) = self.exec_find(exec_id)?;
        let dir = self.paths.container(&cfg.container_id);
        let store = self.runtime()?;
        let opts = barge_runtime::exec::ExecOptions {
            id: cfg.container_id.clone(),
            process: cfg.process.clone(),
            ..Default::default()
        };
        let fg = barge_runtime::exec::Foreground {
            forward_signals: !cfg.tty,
            stdin: cfg.open_stdin,
        };
        if !cfg.open_stdin && !cfg.tty {
            // docker: without -i the process gets no input.
            let null = std::fs::File::open("/dev/null").map_err(|e| Error::Io {
                what: "open",
                path: "/dev/null".into(),
                source: e,
            })?;
            nix::unistd::dup2_stdin(&null).map_err(|e| Error::Other(format!("dup2: {e}")))?;
        }
        let state_path = files::state_path(&dir, exec_id);
        let now = barge_runtime::time::now_rfc3339();
        let me = std::process::id() as i32;
        let started = ExecState {
            running: true,
            reaper_pid: me,
            reaper_start: barge_runtime::state::proc_stat(me)
                .map(|s| s.0)
                .unwrap_or(0),
            started_at: Some(now.clone()),
            ..Default::default()
        };
        let _ = files::save(&state_path, &started);
        self.emit_exec(
            &cfg.container_id,
            exec_id,
            crate::events::Action::ExecStart,
            &[],
        );
        let result = barge_runtime::exec::exec_and_wait_with(&store, &opts, fg);
        let mut st = started;
        st.running = false;
        st.finished_at = Some(barge_runtime::time::now_rfc3339());
        match &result {
            Ok(code) => st.exit_code = Some(*code),
            Err(e) => {
                st.exit_code = Some(e.exec_failure().map(|f| f.exit_code()).unwrap_or(126));
                st.error = Some(e.to_string());
            }
        }
        let _ = files::save(&state_path, &st);
        self.emit_exec(
            &cfg.container_id,
            exec_id,
            crate::events::Action::ExecDie,
            &[("exitCode", st.exit_code.unwrap_or(126).to_string())],
        );
        result.map_err(|e| match e.exec_failure() {
            Some(f) => Error::StartFailed {
                code: f.exit_code(),
                msg: e.to_string(),
            },
            None => Error::Runtime(e),
        })
    }

    /// docker's exec inspect.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        let (cfg, st) = self.exec_find(exec_id)?;
        let mut st = st.unwrap_or_default();
        // A process whose reaper is gone (a killed shim or client) is not running any more
        // unless it really is still there.
        if st.running {
            // A foreground exec's pid is not recorded: its client (the reaper) tells.
            let alive = if st.pid > 0 {
                barge_runtime::state::process_alive(st.pid, st.pid_start)
            } else {
                st.reaper_pid > 0
                    && barge_runtime::state::process_alive(st.reaper_pid, st.reaper_start)
            };
            if !alive {
                st.running = false;
                st.error.get_or_insert_with(|| {
                    "the process ended while nobody recorded its exit code".into()
                });
            }
        }
        let args = cfg.process.args().clone().unwrap_or_default();
        let (entrypoint, arguments) = match args.split_first() {
            Some((e, rest)) => (e.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        Ok(ExecInspect {
            id: cfg.id.clone(),
            running: st.running,
            exit_code: if st.running { None } else { st.exit_code },
            process_config: ProcessConfig {
                tty: cfg.tty,
                entrypoint,
                arguments,
                privileged: cfg.privileged,
                user: cfg.user.clone(),
            },
            open_stdin: cfg.open_stdin,
            open_stderr: !cfg.detach,
            open_stdout: !cfg.detach,
            can_remove: false,
            container_id: cfg.container_id.clone(),
            detach_keys: String::new(),
            pid: st.pid,
            started_at: st.started_at,
            finished_at: st.finished_at,
            error: st.error,
        })
    }

    /// An exec's configuration and state, found by id (or unique prefix) in every container.
    fn exec_find(&self, exec_id: &str) -> Result<(ExecConfig, Option<ExecState>)> {
        let no_such = || Error::NoSuchExec(exec_id.to_string());
        if exec_id.is_empty() || !exec_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(no_such());
        }
        let mut found = Vec::new();
        for rec in self.db.all()? {
            let dir = self.paths.container(&rec.id);
            let Ok(rd) = std::fs::read_dir(files::dir(&dir)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(".json") {
                    if !id.ends_with(".state") && id.starts_with(exec_id) {
                        found.push((dir.clone(), id.to_string()));
                    }
                }
            }
        }
        let (dir, id) = match found.len() {
            0 => return Err(no_such()),
            1 => found.remove(0),
            _ => {
                return Err(Error::Invalid(format!(
                    "exec id prefix {exec_id} is ambiguous"
                )))
            }
        };
        let cfg = files::load_config(&files::config_path(&dir, &id)).map_err(Error::Other)?;
        let st = files::load_state(&files::state_path(&dir, &id)).map_err(Error::Other)?;
        Ok((cfg, st))
    }

    /// The process of an exec: the container's own process with the command, environment,
    /// user, working directory and privileges applied (as `runc exec` builds it).
    fn exec_process(&self, id: &str, o: &ExecOptions) -> Result<Process> {
        let store = self.runtime()?;
        let st = store.load(id)?;
        let mut p = st.spec.process().clone().unwrap_or_default();
        p.set_args(Some(o.cmd.clone()));
        p.set_terminal(Some(o.tty && !o.detach));
        p.set_console_size(None);
        let mut env = p.env().clone().unwrap_or_default();
        for e in &o.env {
            let kv = crate::config::expand_env(e).map_err(Error::Invalid)?;
            if kv.is_empty() {
                continue;
            }
            let key = kv.split('=').next().unwrap_or_default();
            if key.is_empty() {
                return Err(Error::Invalid(format!(
                    "exec: --env {e:?}: expected KEY=VALUE"
                )));
            }
            let prefix = format!("{key}=");
            env.retain(|x| !x.starts_with(&prefix));
            env.push(kv);
        }
        p.set_env(Some(env));
        if let Some(u) = &o.user {
            let u = crate::user::resolve(&self.paths.rootfs(id), u)?;
            p.user_mut().set_uid(u.uid);
            p.user_mut().set_gid(u.gid);
            p.user_mut().set_additional_gids(Some(u.additional_gids));
        }
        if let Some(w) = &o.workdir {
            p.set_cwd(w.into());
        }
        if o.privileged {
            let caps = crate::spec::grantable_capabilities()
                .into_iter()
                .filter_map(|n| {
                    serde_json::from_value::<Capability>(serde_json::Value::String(n)).ok()
                })
                .collect::<std::collections::HashSet<_>>();
            let mut c = p
                .capabilities()
                .clone()
                .unwrap_or_else(LinuxCapabilities::default);
            c.set_bounding(Some(caps.clone()))
                .set_effective(Some(caps.clone()))
                .set_permitted(Some(caps.clone()));
            if c.inheritable().is_some() {
                c.set_ambient(Some(caps));
            }
            p.set_capabilities(Some(c));
        }
        Ok(p)
    }

    /// The container's shim must be alive to start an exec under it.
    fn require_shim(&self, id: &str) -> Result<()> {
        let st = barge_shim::state::load(&self.paths.shim_state(id))
            .map_err(Error::Other)?
            .unwrap_or_default();
        if st.shim_alive() {
            Ok(())
        } else {
            Err(Error::ShimLost {
                id: id.to_string(),
                shim_pid: st.shim_pid,
            })
        }
    }
}

/// How many finished execs a container keeps for inspect (a container exec'd into
/// periodically, as by a health check, must not grow its directory without end).
pub const KEEP_FINISHED: usize = 64;

/// Remove the oldest finished exec records beyond [`KEEP_FINISHED`].
fn prune_finished(container_dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(files::dir(container_dir)) else {
        return;
    };
    let mut finished: Vec<(String, String)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".state.json")?.to_string();
            let st = files::load_state(&e.path()).ok()??;
            (!st.running).then(|| (st.finished_at.unwrap_or_default(), id))
        })
        .collect();
    if finished.len() <= KEEP_FINISHED {
        return;
    }
    // RFC 3339 times in UTC sort as text.
    finished.sort();
    let extra = finished.len() - KEEP_FINISHED;
    for (_, id) in finished.into_iter().take(extra) {
        let _ = std::fs::remove_file(files::config_path(container_dir, &id));
        let _ = std::fs::remove_file(files::state_path(container_dir, &id));
    }
}

/// What a shim answers to a request it does not know (one started by an older barge).
const BAD_REQUEST: &str = "error: bad request";

/// The shim's answer to `exec ID`: `ok PID` or `err CODE MESSAGE`.
fn parse_start_answer(container: &str, exec_id: &str, answer: &str) -> Result<i32> {
    match answer.split_once(' ') {
        Some(("ok", pid)) => pid.trim().parse().map_err(|_| Error::Shim {
            id: container.to_string(),
            msg: format!("start exec {exec_id}: bad pid {pid:?}"),
        }),
        Some(("err", rest)) => {
            let (code, msg) = rest.split_once(' ').unwrap_or(("125", rest));
            match code.parse::<i32>() {
                Ok(c @ (126 | 127)) => Err(Error::StartFailed {
                    code: c,
                    msg: msg.to_string(),
                }),
                _ => Err(Error::Other(format!("start exec {exec_id}: {msg}"))),
            }
        }
        _ => Err(Error::Shim {
            id: container.to_string(),
            msg: format!("start exec {exec_id}: unexpected answer {answer:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_answers() {
        assert_eq!(parse_start_answer("c", "e", "ok 42").unwrap(), 42);
        match parse_start_answer("c", "e", "err 127 exec: \"x\": not found") {
            Err(Error::StartFailed { code: 127, msg }) => assert!(msg.contains("\"x\"")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_start_answer("c", "e", "err 125 boom"),
            Err(Error::Other(m)) if m.contains("boom")
        ));
        assert!(parse_start_answer("c", "e", "").is_err());
    }

    #[test]
    fn finished_records_are_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(files::dir(dir.path())).unwrap();
        let n = KEEP_FINISHED + 3;
        for i in 0..n {
            let id = format!("{i:04x}");
            let st = ExecState {
                running: i == 0,
                finished_at: Some(format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60)),
                ..Default::default()
            };
            files::save(&files::state_path(dir.path(), &id), &st).unwrap();
            std::fs::write(files::config_path(dir.path(), &id), "{}").unwrap();
        }
        prune_finished(dir.path());
        let left = |id: usize| files::state_path(dir.path(), &format!("{id:04x}")).exists();
        // The running one stays whatever its age; the oldest finished ones went.
        assert!(left(0));
        let kept = (0..n).filter(|i| left(*i)).count();
        assert_eq!(kept, KEEP_FINISHED + 1);
        let gone: Vec<usize> = (0..n).filter(|i| !left(*i)).collect();
        assert_eq!(gone, [1, 2]);
    }
}
