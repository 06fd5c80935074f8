//! [`Agent`]: one edge device: its own barge store (`--root`/`--runroot`/`--config` in a
//! temp dir, the busybox image imported as `bb:latest`), `barge edge join`, `barge edge run`
//! in the background (output in a log file), and what a test does to a device: kill the
//! agent, "power it off" (agent, shims and containers SIGKILLed, mounts gone, run root wiped).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use barge_testutil::engine::{alive, wait_until, BargeEnv};
use barge_testutil::exec_bounded;
use serde_json::Value;

use crate::util::{barge_bin, poll, Proc};

pub struct Agent {
    pub name: String,
    run: Option<Proc>,
    runs: u32,
    pub env: BargeEnv,
}

impl Agent {
    /// A device named `name` with a fresh store (nothing joined yet).
    pub fn new(name: &str) -> Agent {
        let bin = barge_bin();
        let env = BargeEnv::new(bin.to_str().expect("barge path is UTF-8"));
        Agent {
            name: name.to_string(),
            run: None,
            runs: 0,
            env,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.env.root()
    }

    pub fn runroot(&self) -> PathBuf {
        self.env.runroot()
    }

    /// `barge ARGS` against this device's store (bounded in time).
    pub fn barge(&self, args: &[&str]) -> Output {
        exec_bounded(self.env.cmd(args), Duration::from_secs(60))
    }

    /// `barge edge join URL --token T --name NAME [--label k=v]...`.
    pub fn try_join(&self, hub_url: &str, token: &str, labels: &[(&str, &str)]) -> Output {
        let mut args = vec![
            "edge".to_string(),
            "join".into(),
            hub_url.into(),
            "--token".into(),
            token.into(),
            "--name".into(),
            self.name.clone(),
        ];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.barge(&a)
    }

    /// Join, panicking with the output on failure.
    pub fn join(&self, hub_url: &str, token: &str, labels: &[(&str, &str)]) {
        let o = self.try_join(hub_url, token, labels);
        assert!(
            o.status.success(),
            "{}: barge edge join failed: {}{}",
            self.name,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Start `barge edge run [ARGS]` in the background (its output in `agent-N.log`).
    pub fn run(&mut self, args: &[&str]) {
        assert!(self.run.is_none(), "{}: the agent already runs", self.name);
        let mut cmd = self.env.cmd(&["edge", "run"]);
        cmd.args(args);
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        self.runs += 1;
        let log = self.env.path().join(format!("agent-{}.log", self.runs));
        self.run = Some(Proc::spawn(cmd, &log));
    }

    /// Whether `barge edge run` is still running.
    pub fn running(&mut self) -> bool {
        self.run.as_mut().is_some_and(Proc::running)
    }

    /// SIGKILL the agent (its pods keep running: they belong to their shims).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.run.take() {
            p.kill();
        }
    }

    /// SIGTERM the agent and wait for it (SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) {
        if let Some(mut p) = self.run.take() {
            p.stop(grace);
        }
    }

    /// The agent's output: every run so far, in order.
    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                std::fs::read_to_string(self.env.path().join(format!("agent-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- agent restarted ---\n")
    }

    /// `barge ps -a` rows (JSON objects: ID, Names, State, Labels...).
    pub fn ps(&self) -> Vec<Value> {
        let o = self.barge(&["ps", "-a", "--no-trunc", "--format", "json"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Names and ids of the running containers (`barge ps`).
    pub fn running_containers(&self) -> Vec<(String, String)> {
        self.ps()
            .into_iter()
            .filter(|c| c["State"].as_str() == Some("running"))
            .map(|c| {
                (
                    c["Names"].as_str().unwrap_or_default().to_string(),
                    c["ID"]
                        .as_str()
                        .or(c["Id"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }

    /// `barge pod ls` names.
    pub fn pods(&self) -> BTreeSet<String> {
        let o = self.barge(&["pod", "ls", "--format", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Array(vec![]));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["Name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `inspect -f TEMPLATE ID`, trimmed (empty when it fails).
    pub fn inspect(&self, id: &str, template: &str) -> String {
        let o = self.barge(&["inspect", "-f", template, id]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Wait until `barge ps` shows a running container whose name contains each of
    /// `needles`; the matching (name, id) pairs.
    pub fn wait_running(
        &self,
        needles: &[&str],
        timeout: Duration,
    ) -> Option<Vec<(String, String)>> {
        poll(timeout, || {
            let running = self.running_containers();
            let mut found = Vec::new();
            for n in needles {
                found.push(running.iter().find(|(name, _)| name.contains(n))?.clone());
            }
            Some(found)
        })
    }

    /// A reboot while offline, as far as barge can tell: the agent, every shim and every
    /// container SIGKILLed (only processes named in this store's state files, checked by
    /// command line), their cgroups removed, every mount under the store gone, the run root
    /// (a tmpfs on a real device) wiped.
    pub fn power_off(&mut self) {
        self.kill();
        let mut pids = Vec::new();
        let mut cgroups = Vec::new();
        let containers = self.root().join("containers");
        for e in std::fs::read_dir(&containers)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let Some(st) = read_json(&e.path().join("state.json")) else {
                continue;
            };
            let shim = st["shim_pid"].as_i64().unwrap_or(0) as i32;
            let pid = st["pid"].as_i64().unwrap_or(0) as i32;
            if shim > 0
                && cmdline(shim).is_some_and(|c| c.contains("barge-shim") && c.contains(&id))
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(shim),
                    nix::sys::signal::Signal::SIGKILL,
                );
                pids.push(shim);
            }
            let rt = self.runroot().join("runtime").join(&id).join("state.json");
            if let Some(rs) = read_json(&rt) {
                // The container's init is checked against the runtime's record of it.
                if pid > 0 && rs["pid"].as_i64() == Some(pid as i64) && alive(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    pids.push(pid);
                }
                for p in rs["cgroup"]["paths"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(p) = p.as_str() {
                        cgroups.push(PathBuf::from(p));
                    }
                }
            }
        }
        assert!(
            wait_until(Duration::from_secs(10), || pids.iter().all(|p| !alive(*p))),
            "{}: processes survived SIGKILL: {pids:?}",
            self.name
        );
        let mut points: Vec<PathBuf> = barge_util::mountinfo::read_self()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(self.env.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
        // Deepest first: pod cgroups hold their containers'.
        cgroups.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for cg in cgroups {
            let _ = std::fs::remove_dir(cg);
        }
        let _ = std::fs::remove_dir_all(self.runroot());
    }
}

impl Drop for Agent {
    /// The agent first (so it does not start pods again), then the pods it made; the store's
    /// own guard then removes containers and unmounts.
    fn drop(&mut self) {
        self.kill();
        let o = self.barge(&["pod", "ls", "-q", "--no-trunc"]);
        for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            let _ = self.barge(&["pod", "rm", "-f", id]);
        }
    }
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}
