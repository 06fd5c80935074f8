//! Finding a plugin binary and running it once: stdin in, stdout out, within a timeout.
//!
//! The plugin runs in its own process group. When it does not finish in time the whole group is
//! killed (plugins run helpers such as iptables, which must not outlive it) and reaped.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{self, Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::command::Command;
use crate::conf::is_valid_plugin_type;
use crate::error::{at, Error, Result};
use crate::result::ErrorObject;

/// Most stdout kept from a plugin; more is an error.
const STDOUT_LIMIT: usize = 16 << 20;
/// Most stderr kept from a plugin (the rest is read and dropped).
const STDERR_LIMIT: usize = 64 << 10;
/// Most plugin text quoted in an error message.
const QUOTE_LIMIT: usize = 4096;
/// How long to wait for a killed plugin to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(5);
/// Longest sleep between checks for the plugin's exit.
const MAX_NAP: Duration = Duration::from_millis(20);
/// How often to retry a spawn that fails with ETXTBSY (the binary was just written).
const SPAWN_RETRIES: u32 = 5;

/// Which call is being made, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The network (config list) name; `None` for VERSION.
    pub network: Option<&'a str>,
    /// The plugin type.
    pub plugin: &'a str,
    /// The CNI command.
    pub command: Command,
}

impl Call<'_> {
    fn network(&self) -> Option<String> {
        self.network.map(str::to_owned)
    }

    fn describe(&self) -> String {
        at(&self.network(), self.plugin, self.command)
    }

    fn io(&self, what: &str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            what: format!("{}: {what}", self.describe()),
            path: path.to_owned(),
            source,
        }
    }

    /// A [`Error::BadOutput`] for this call.
    pub fn bad_output(&self, msg: impl Into<String>) -> Error {
        Error::BadOutput {
            network: self.network(),
            plugin: self.plugin.to_owned(),
            command: self.command,
            msg: msg.into(),
        }
    }

    fn timeout(&self, after: Duration) -> Error {
        Error::Timeout {
            network: self.network(),
            plugin: self.plugin.to_owned(),
            command: self.command,
            after,
        }
    }

    fn plugin_error(&self, code: Option<u64>, msg: String, details: String) -> Error {
        Error::Plugin {
            network: self.network(),
            plugin: self.plugin.to_owned(),
            command: self.command,
            code,
            msg,
            details,
        }
    }
}

/// The first `plugin_type` file in `dirs` (in order) that is executable.
///
/// Errors with [`Error::NotFound`] listing the directories searched.
pub fn find_plugin(dirs: &[PathBuf], plugin_type: &str) -> Result<PathBuf> {
    if !is_valid_plugin_type(plugin_type) {
        return Err(Error::Config {
            origin: format!("CNI plugin type {plugin_type:?}"),
            msg: "not a plain file name".to_owned(),
        });
    }
    for dir in dirs {
        let candidate = dir.join(plugin_type);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(Error::NotFound {
        network: None,
        plugin: plugin_type.to_owned(),
        dirs: dirs.to_vec(),
    })
}

/// What a reader thread collected from one pipe.
struct Captured {
    data: Vec<u8>,
    truncated: bool,
}

enum Event {
    Stdout(io::Result<Captured>),
    Stderr(io::Result<Captured>),
}

/// Runs `plugin` once and returns its stdout.
///
/// The plugin inherits this process's environment (plugins need `PATH` to run iptables and the
/// like) minus any `CNI_*` variables, plus `env`. `stdin` is written from a thread while stdout
/// and stderr are read from two others. If the plugin (and anything still holding its output
/// pipes) has not finished after `timeout`, its process group is killed with SIGKILL and
/// [`Error::Timeout`] returned. A non-zero exit becomes [`Error::Plugin`], with the CNI error
/// object the plugin printed or, failing that, the text it wrote.
///
/// SIGPIPE must be ignored in this process (Rust's default for binaries): a plugin that exits
/// without reading all of stdin would otherwise kill it.
pub fn invoke(
    call: &Call<'_>,
    plugin: &Path,
    env: &[(String, String)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut cmd = process::Command::new(plugin);
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"CNI_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(
        env.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = spawn(&mut cmd).map_err(|e| call.io("cannot start", plugin, e))?;
    // Linux PIDs fit in an i32 (pid_max is at most 2^22).
    let pid = Pid::from_raw(child.id() as i32);

    if let Err(e) = start_threads(&mut child, stdin) {
        kill_and_reap(pid, &mut child);
        return Err(call.io("cannot start I/O threads for", plugin, e));
    }
    let rx = match start_readers(&mut child) {
        Ok(rx) => rx,
        Err(e) => {
            kill_and_reap(pid, &mut child);
            return Err(call.io("cannot start I/O threads for", plugin, e));
        }
    };

    let deadline = Instant::now() + timeout;
    let mut exited = false;
    let mut stdout = None;
    let mut stderr = None;
    let mut nap = Duration::from_millis(1);
    loop {
        if !exited {
            // Look without reaping: while the leader is unreaped its PID (our process group ID)
            // cannot be reused, so killpg below is always aimed at the plugin's group.
            exited = match has_exited(pid) {
                Ok(exited) => exited,
                Err(e) => {
                    kill_and_reap(pid, &mut child);
                    return Err(call.io("cannot wait for", plugin, e));
                }
            };
        }
        if exited && stdout.is_some() && stderr.is_some() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            kill_and_reap(pid, &mut child);
            return Err(call.timeout(timeout));
        }
        let left = deadline - now;
        let wait = if exited { left } else { nap.min(left) };
        match rx.recv_timeout(wait) {
            Ok(Event::Stdout(c)) => stdout = Some(c),
            Ok(Event::Stderr(c)) => stderr = Some(c),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => thread::sleep(wait),
        }
        nap = (nap * 2).min(MAX_NAP);
    }

    let status = child
        .wait()
        .map_err(|e| call.io("cannot reap", plugin, e))?;
    let stdout = match stdout {
        Some(Ok(c)) => c,
        Some(Err(e)) => return Err(call.io("cannot read the output of", plugin, e)),
        None => {
            let e = io::Error::other("the output pipe was not collected");
            return Err(call.io("cannot read the output of", plugin, e));
        }
    };
    let stderr = match stderr {
        Some(Ok(c)) => c.data,
        _ => Vec::new(),
    };
    if stdout.truncated {
        return Err(call.bad_output(format!("printed more than {STDOUT_LIMIT} bytes on stdout")));
    }
    if status.success() {
        return Ok(stdout.data);
    }
    Err(failure(call, status, &stdout.data, &stderr))
}

/// The error for a plugin that exited unsuccessfully.
fn failure(call: &Call<'_>, status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Error {
    if let Some(obj) = ErrorObject::from_slice(stdout) {
        return call.plugin_error(Some(obj.code), obj.msg, obj.details);
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("failed ({status})"),
    };
    let text = [stderr, stdout]
        .into_iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .find(|t| !t.is_empty());
    let msg = match text {
        Some(t) => format!("{how}: {}", quote(&t)),
        None => format!("{how} without output"),
    };
    call.plugin_error(None, msg, String::new())
}

/// At most [`QUOTE_LIMIT`] bytes of `text`, cut at a character boundary.
fn quote(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text.to_owned();
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Spawns, retrying while the binary is busy being written (ETXTBSY), as libcni does.
fn spawn(cmd: &mut process::Command) -> io::Result<Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e)
                if e.raw_os_error() == Some(Errno::ETXTBSY as i32) && attempt < SPAWN_RETRIES =>
            {
                attempt += 1;
                thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
            }
            other => return other,
        }
    }
}

/// Starts the thread writing the plugin's stdin. It is not waited for: a plugin may exit
/// without reading everything (the write then fails with EPIPE, which is fine).
fn start_threads(child: &mut Child, stdin: &[u8]) -> io::Result<()> {
    if let Some(mut pipe) = child.stdin.take() {
        let data = stdin.to_vec();
        thread::Builder::new()
            .name("cni-stdin".to_owned())
            .spawn(move || {
                // Errors (EPIPE from a plugin that stopped reading) only mean the plugin has
                // what it wanted; its exit status tells the rest.
                let _ = pipe.write_all(&data);
            })?;
    }
    Ok(())
}

/// Starts the threads reading stdout and stderr; each sends one [`Event`] when its pipe closes.
fn start_readers(child: &mut Child) -> io::Result<Receiver<Event>> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = child.stdout.take() {
        let tx = tx.clone();
        thread::Builder::new()
            .name("cni-stdout".to_owned())
            .spawn(move || {
                let _ = tx.send(Event::Stdout(capture(pipe, STDOUT_LIMIT)));
            })?;
    } else {
        let _ = tx.send(Event::Stdout(Ok(Captured {
            data: Vec::new(),
            truncated: false,
        })));
    }
    if let Some(pipe) = child.stderr.take() {
        let tx = tx.clone();
        thread::Builder::new()
            .name("cni-stderr".to_owned())
            .spawn(move || {
                let _ = tx.send(Event::Stderr(capture(pipe, STDERR_LIMIT)));
            })?;
    } else {
        let _ = tx.send(Event::Stderr(Ok(Captured {
            data: Vec::new(),
            truncated: false,
        })));
    }
    Ok(rx)
}

/// Reads `r` to its end, keeping at most `limit` bytes.
fn capture(mut r: impl Read, limit: usize) -> io::Result<Captured> {
    let mut data = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = limit.saturating_sub(data.len());
        if n > room {
            truncated = true;
        }
        data.extend_from_slice(&buf[..n.min(room)]);
    }
    Ok(Captured { data, truncated })
}

/// Whether the child has exited, without reaping it.
fn has_exited(pid: Pid) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(WaitStatus::StillAlive) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Kills the plugin's whole process group and reaps the plugin (waiting at most
/// [`REAP_GRACE`]). Must be called while the plugin is not yet reaped.
fn kill_and_reap(pid: Pid, child: &mut Child) {
    match killpg(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        // Should not happen for our own child's group; at least kill the plugin itself.
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    let give_up = Instant::now() + REAP_GRACE;
    while Instant::now() < give_up {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fake_plugin, is_alive, process_gone, read_pid};

    const CALL: Call<'static> = Call {
        network: Some("testnet"),
        plugin: "fake",
        command: Command::Add,
    };

    fn run(script: &str, stdin: &[u8], timeout: Duration) -> (tempfile::TempDir, Result<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let plugin = fake_plugin(dir.path(), "fake", script);
        let env = vec![
            ("CNI_COMMAND".to_owned(), "ADD".to_owned()),
            ("OUT".to_owned(), dir.path().display().to_string()),
        ];
        let r = invoke(&CALL, &plugin, &env, stdin, timeout);
        (dir, r)
    }

    #[test]
    fn find_plugin_takes_the_first_executable_in_dir_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        // Not executable in a: skipped. A directory of that name in b: skipped.
        fs::write(a.path().join("bridge"), "#!/bin/sh\n").unwrap();
        fs::create_dir(b.path().join("bridge")).unwrap();
        let want = fake_plugin(c.path(), "bridge", "exit 0");
        let dirs = vec![
            a.path().to_owned(),
            b.path().to_owned(),
            c.path().to_owned(),
        ];
        assert_eq!(find_plugin(&dirs, "bridge").unwrap(), want);
        fake_plugin(a.path(), "tuning", "exit 0");
        assert_eq!(
            find_plugin(&dirs, "tuning").unwrap(),
            a.path().join("tuning")
        );

        let e = find_plugin(&dirs, "missing").unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }));
        let text = e.to_string();
        for d in &dirs {
            assert!(text.contains(&d.display().to_string()), "{text}");
        }
        assert!(text.contains("\"missing\""), "{text}");
        assert!(matches!(
            find_plugin(&dirs, "../bridge"),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn passes_stdin_and_env_and_returns_stdout() {
        let (dir, r) = run(
            "cat > \"$OUT/stdin\"; echo \"cmd=$CNI_COMMAND path=${PATH:+set}\"",
            b"{\"hello\":1}",
            Duration::from_secs(10),
        );
        assert_eq!(String::from_utf8(r.unwrap()).unwrap(), "cmd=ADD path=set\n");
        assert_eq!(
            fs::read(dir.path().join("stdin")).unwrap(),
            b"{\"hello\":1}"
        );
    }

    #[test]
    fn a_plugin_that_ignores_a_large_stdin_is_fine() {
        let big = vec![b'x'; 4 << 20];
        let (_dir, r) = run("echo ok", &big, Duration::from_secs(10));
        assert_eq!(r.unwrap(), b"ok\n");
    }

    #[test]
    fn error_object_becomes_a_plugin_error() {
        let (_dir, r) = run(
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"no addresses left","details":"range 10.0.0.0/30"}'; echo noise >&2; exit 1"#,
            b"",
            Duration::from_secs(10),
        );
        match r.unwrap_err() {
            e @ Error::Plugin { .. } => {
                assert_eq!(e.code(), Some(11));
                assert_eq!(
                    e.to_string(),
                    "network \"testnet\": plugin fake (ADD): no addresses left: range 10.0.0.0/30 (CNI error code 11)"
                );
            }
            e => panic!("wrong error {e:?}"),
        }
    }

    #[test]
    fn non_json_failure_quotes_stderr_then_stdout() {
        let (_dir, r) = run(
            "echo 'boom on stderr' >&2; exit 3",
            b"",
            Duration::from_secs(10),
        );
        let e = r.unwrap_err();
        assert_eq!(e.code(), None);
        assert_eq!(
            e.to_string(),
            "network \"testnet\": plugin fake (ADD): exited with status 3: boom on stderr"
        );
        let (_dir, r) = run("echo 'plain stdout'; exit 2", b"", Duration::from_secs(10));
        assert!(r
            .unwrap_err()
            .to_string()
            .ends_with("exited with status 2: plain stdout"));
        let (_dir, r) = run("kill -9 $$", b"", Duration::from_secs(10));
        let e = r.unwrap_err().to_string();
        assert!(e.ends_with("was killed by signal 9 without output"), "{e}");
    }

    #[test]
    fn a_hanging_plugin_is_killed_after_the_timeout() {
        let start = Instant::now();
        let (_dir, r) = run("exec sleep 30", b"", Duration::from_millis(300));
        let e = r.unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "network \"testnet\": plugin fake (ADD): did not answer within 300ms (killed)"
        );
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn the_timeout_kills_the_plugins_children_too() {
        let start = Instant::now();
        let (dir, r) = run(
            "sleep 30 & echo $! > \"$OUT/child.pid\"; wait",
            b"",
            Duration::from_millis(300),
        );
        assert!(r.unwrap_err().is_timeout());
        assert!(start.elapsed() < Duration::from_secs(10));
        let child = read_pid(&dir.path().join("child.pid"));
        assert!(process_gone(child), "child {child} of the plugin survived");
    }

    #[test]
    fn a_child_holding_stdout_after_the_plugin_exits_is_killed() {
        let (dir, r) = run(
            "sleep 30 & echo $! > \"$OUT/child.pid\"; echo result; exit 0",
            b"",
            Duration::from_millis(300),
        );
        assert!(r.unwrap_err().is_timeout());
        let child = read_pid(&dir.path().join("child.pid"));
        assert!(process_gone(child), "child {child} of the plugin survived");
    }

    #[test]
    fn a_child_with_its_own_output_may_outlive_the_plugin() {
        // Detached helpers (stdio elsewhere) are not the plugin's output: no wait, no kill.
        let (dir, r) = run(
            "sleep 30 >/dev/null 2>&1 </dev/null & echo $! > \"$OUT/child.pid\"; echo done",
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(r.unwrap(), b"done\n");
        let child = read_pid(&dir.path().join("child.pid"));
        assert!(is_alive(child));
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }

    #[test]
    fn a_missing_binary_is_an_io_error_naming_it() {
        let e = invoke(
            &CALL,
            Path::new("/nonexistent/plugin"),
            &[],
            b"",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/plugin") && text.contains("plugin fake (ADD)"),
            "{text}"
        );
    }
}
