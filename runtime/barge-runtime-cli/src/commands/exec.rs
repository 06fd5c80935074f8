use std::path::PathBuf;

use barge_runtime::exec::{self, ExecOptions};
use barge_runtime::{Error, Result, Store};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process};

/// `exec`, with runc's flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON file with the full process to run (instead of COMMAND and the flags below).
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Unix socket that receives the pty master when --tty is set.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Run as this user: UID[:GID].
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// An additional group id (repeatable).
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// SELinux label of the process (accepted for runc compatibility; ignored).
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability to the bounding, effective and permitted sets (repeatable).
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Return once the process runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Pass this many extra fds (from fd 3) to the process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
    /// The command and its arguments.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    let process = a.build_process(store)?;
    if process.terminal() == Some(true) && a.detach && a.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "exec: --tty with --detach needs --console-socket".into(),
        ));
    }
    let opts = ExecOptions {
        id: a.id.clone(),
        process,
        console_socket: a.console_socket.clone(),
        console_fd: None,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    if a.detach {
        exec::exec(store, &opts)?;
        Ok(0)
    } else {
        exec::exec_and_wait(store, &opts)
    }
}

impl Args {
    /// The process to run: from --process, else the container's own process with the command
    /// and the flags applied (as runc does).
    fn build_process(&self, store: &Store) -> Result<Process> {
        if let Some(label) = self.process_label.as_deref().filter(|l| !l.is_empty()) {
            tracing::warn!("--process-label {label:?} ignored: SELinux labels are not supported");
        }
        if let Some(path) = &self.process {
            if !self.command.is_empty() {
                return Err(Error::InvalidArgument(
                    "exec: give either --process or a command, not both".into(),
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
                context: format!("read process file {}", path.display()),
                source: e,
            })?;
            return serde_json::from_str(&text).map_err(|e| {
                Error::InvalidArgument(format!("process file {}: {e}", path.display()))
            });
        }
        if self.command.is_empty() {
            return Err(Error::InvalidArgument(
                "exec: no command given (pass COMMAND [ARGS...] or --process FILE)".into(),
            ));
        }
        let st = store.load(&self.id)?;
        let mut p = st.spec.process().clone().unwrap_or_default();
        p.set_args(Some(self.command.clone()));
        if let Some(cwd) = &self.cwd {
            p.set_cwd(cwd.clone());
        }
        if let Some(profile) = &self.apparmor {
            p.set_apparmor_profile(Some(profile.clone()));
        }
        if !self.cap.is_empty() {
            if let Some(caps) = p.capabilities().clone() {
                p.set_capabilities(Some(add_caps(caps, &self.cap)?));
            }
        }
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &self.env {
            merge_env(&mut env, kv)?;
        }
        p.set_env(Some(env));
        p.set_terminal(Some(self.tty));
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(u) = &self.user {
            let (uid, gid) = parse_user(u)?;
            p.user_mut().set_uid(uid);
            if let Some(gid) = gid {
                p.user_mut().set_gid(gid);
            }
        }
        if !self.additional_gids.is_empty() {
            let mut gids = p.user().additional_gids().clone().unwrap_or_default();
            gids.extend(&self.additional_gids);
            p.user_mut().set_additional_gids(Some(gids));
        }
        Ok(p)
    }
}

/// `KEY=VALUE` replaces an earlier `KEY=...` (the last one wins, as runc) or is appended.
fn merge_env(env: &mut Vec<String>, kv: &str) -> Result<()> {
    let Some((key, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
        return Err(Error::InvalidArgument(format!(
            "exec: --env {kv:?}: expected KEY=VALUE"
        )));
    };
    let prefix = format!("{key}=");
    env.retain(|e| !e.starts_with(&prefix));
    env.push(kv.to_string());
    Ok(())
}

/// `UID[:GID]`, numeric as runc takes it.
fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::InvalidArgument(format!("exec: --user {u:?}: expected UID[:GID]"));
    let (uid, gid) = match u.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (u, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// runc's `--cap`: into bounding, effective and permitted; into ambient only when the process
/// has an inheritable set (ambient capabilities need inheritable ones).
fn add_caps(mut caps: LinuxCapabilities, names: &[String]) -> Result<LinuxCapabilities> {
    let parsed = names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| Error::InvalidArgument(format!("exec: unknown capability {n:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let add = |set: &Option<Capabilities>| {
        let mut s = set.clone().unwrap_or_default();
        s.extend(parsed.iter().copied());
        Some(s)
    };
    let (b, e, p) = (
        add(caps.bounding()),
        add(caps.effective()),
        add(caps.permitted()),
    );
    caps.set_bounding(b).set_effective(e).set_permitted(p);
    if caps.inheritable().is_some() {
        let amb = add(caps.ambient());
        caps.set_ambient(amb);
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_last_one_wins() {
        let mut env = vec!["PATH=/bin".to_string(), "TERM=xterm".to_string()];
        merge_env(&mut env, "TERM=dumb").unwrap();
        merge_env(&mut env, "FOO=a=b").unwrap();
        assert_eq!(env, ["PATH=/bin", "TERM=dumb", "FOO=a=b"]);
        assert!(merge_env(&mut env, "NOVALUE").is_err());
        assert!(merge_env(&mut env, "=x").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:2000").unwrap(), (1000, Some(2000)));
        assert!(parse_user("user").is_err());
        assert!(parse_user("1:x").is_err());
    }

    #[test]
    fn caps_are_added_to_three_sets_and_ambient_only_with_inheritable() {
        let caps: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        }))
        .unwrap();
        let c = add_caps(caps, &["CAP_SYS_ADMIN".into(), "net_raw".into()]).unwrap();
        for set in [c.bounding(), c.effective(), c.permitted()] {
            let set = set.as_ref().unwrap();
            assert!(set.contains(&Capability::SysAdmin) && set.contains(&Capability::NetRaw));
            assert!(set.contains(&Capability::Kill));
        }
        assert!(c.ambient().is_none());
        assert!(add_caps(c, &["CAP_NOPE".into()]).is_err());
    }
}
