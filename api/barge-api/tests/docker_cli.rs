//! The real docker 28 CLI against `barge daemon` on a temporary socket and store: what each
//! command prints and does is checked inside the container or on the host.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use barge_testutil::net::{free_port, wait_http, HTTPD};
use common::*;

/// `docker run`: output, exit code passthrough, -w, -u, -e, -i with piped stdin, a missing
/// program (127), --rm removing the container.
#[test]
fn run_output_exit_codes_and_flags() {
    let d = Daemon::start();
    assert_eq!(d.docker_ok(&["run", "--rm", "bb", "echo", "hi"]), "hi\n");
    let o = d.docker(&[
        "run",
        "--name",
        "three",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    assert_eq!(d.inspect("three", "{{.State.ExitCode}}"), "3");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-w", "/tmp", "bb", "pwd"]),
        "/tmp\n"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-u",
            "1234:5678",
            "bb",
            "sh",
            "-c",
            "id -u; id -g"
        ]),
        "1234\n5678\n"
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-e",
            "GREETING=ahoy",
            "bb",
            "sh",
            "-c",
            "echo $GREETING"
        ]),
        "ahoy\n"
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let o = d.docker_stdin(&["run", "--rm", "-i", "bb", "wc", "-c"], &big);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "200000");
    let o = d.docker(&["run", "--rm", "bb", "no-such-program"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    // --rm: only "three" is left; prune removes it, not a running one.
    assert_eq!(d.docker_ok(&["ps", "-aq"]).lines().count(), 1);
    d.docker_ok(&["run", "-d", "--name", "up", "bb", "sleep", "300"]);
    let three = d.inspect("three", "{{.Id}}");
    let pruned = d.docker_ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(&three), "{pruned}");
    assert_eq!(d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]), "up\n");
}

/// `docker run -t` through a pty: the process has a terminal, output comes raw.
#[test]
fn run_with_a_terminal() {
    let d = Daemon::start();
    let cmd = format!(
        "{} run -t --rm bb sh -c 'tty; stty size'",
        docker_bin().display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let o = wait_output(child, DOCKER_TIMEOUT);
    let out = stdout(&o);
    assert!(o.status.success(), "{out} {}", stderr(&o));
    assert!(out.contains("/dev/pts/"), "{out:?}");
    // A tty stream has no stdcopy headers.
    assert!(!out.as_bytes().contains(&0u8), "{out:?}");
}

/// -d, ps with filters, inspect, top, logs, pause/unpause, rename, stop, wait, rm.
#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "tier=front",
            "bb",
            "sh",
            "-c",
            "echo started; exec sleep 300",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    d.docker_ok(&["create", "--name", "idle", "bb", "true"]);
    let names = |f: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        args.extend_from_slice(f);
        let mut v: Vec<String> = d.docker_ok(&args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&[]), ["idle", "web"]);
    assert_eq!(names(&["--filter", "status=running"]), ["web"]);
    assert_eq!(names(&["--filter", "status=created"]), ["idle"]);
    assert_eq!(names(&["--filter", "label=tier=front"]), ["web"]);
    assert_eq!(names(&["--filter", "name=idl"]), ["idle"]);
    assert_eq!(d.docker_ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(
        d.inspect(
            "web",
            "{{.State.Status}} {{.Config.Labels.tier}} {{.Name}} {{.State.Running}}"
        ),
        "running front /web true"
    );
    let pid: i32 = d.inspect("web", "{{.State.Pid}}").parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let top = d.docker_ok(&["top", "web"]);
    assert!(
        top.contains("sleep 300") && top.contains(&pid.to_string()),
        "{top}"
    );
    assert!(wait_until(Duration::from_secs(5), || d
        .docker_ok(&["logs", "web"])
        == "started\n"));
    d.docker_ok(&["pause", "web"]);
    assert_eq!(d.inspect("web", "{{.State.Status}}"), "paused");
    let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        state.lines().any(|l| l.starts_with("State:")
            && (l.contains("(stopped)") || l.contains("D") || l.contains("S"))),
        "{state}"
    );
    d.docker_ok(&["unpause", "web"]);
    assert_eq!(d.inspect("web", "{{.State.Status}}"), "running");
    d.docker_ok(&["rename", "web", "web2"]);
    assert_eq!(d.inspect(&id, "{{.Name}}"), "/web2");
    let t0 = Instant::now();
    d.docker_ok(&["stop", "-t", "1", "web2"]);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(
        !barge_testutil::engine::alive(pid),
        "the container's process survived stop"
    );
    assert_eq!(d.docker_ok(&["wait", "web2"]).trim(), "137");
    d.docker_ok(&["rm", "web2", "idle"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    let o = d.docker(&["inspect", "web2"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("No such"), "{}", stderr(&o));
}

/// -v: a bind mount shows the host's file; a named volume keeps data across containers.
#[test]
fn bind_mounts_and_named_volumes() {
    let d = Daemon::start();
    let host = d.store.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello from host\n").unwrap();
    let bind = format!("{}:/h", host.display());
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "-v",
            &bind,
            "bb",
            "sh",
            "-c",
            "cat /h/from-host; echo back > /h/from-ctr"
        ]),
        "hello from host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("from-ctr")).unwrap(),
        "back\n"
    );
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "bb",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-v", "keep:/data:ro", "bb", "cat", "/data/f"]),
        "kept\n"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/data:ro",
        "bb",
        "touch",
        "/data/g",
    ]);
    assert!(!o.status.success(), "a read-only volume was writable");
}

/// -p: a TCP connection through the published port reaches the container's server.
#[test]
fn published_port_reaches_the_container() {
    let d = Daemon::start();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "www",
        "-p",
        &publish,
        "-e",
        "BODY=through-barge",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(wait_http(port).trim(), "through-barge");
    let ports = d.docker_ok(&["port", "www"]);
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{port}")),
        "{ports}"
    );
    // The port is taken: `run --rm` fails at start. The CLI then waits for the daemon to
    // remove the container (`wait?condition=removed`), so it must be removed, not left
    // `Created` with the CLI hanging.
    let o = barge_testutil::exec_bounded(
        d.docker_cmd(&["run", "--rm", "-p", &publish, "bb", "true"]),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("port is already allocated"), "{err}");
    let all = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(
        all.trim(),
        "www",
        "the failed --rm container was left behind"
    );
    d.docker_ok(&["rm", "-f", "www"]);
}

/// --restart on-failure:2 restarts twice, then stays exited.
#[test]
fn restart_policy() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            d.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
        }),
        "{}",
        d.inspect("flaky", "{{.RestartCount}} {{.State.Status}}")
    );
    assert_eq!(
        d.inspect(
            "flaky",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:2"
    );
}

/// exec: output and exit code, -i with stdin, -t with a terminal, -d in the background.
#[test]
fn exec_modes() {
    let d = Daemon::start();
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "300"]);
    let o = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let o = d.docker_stdin(
        &[
            "exec",
            "-i",
            "box",
            "sh",
            "-c",
            "cat > /tmp/in; wc -c < /tmp/in",
        ],
        b"12345",
    );
    assert_eq!(stdout(&o).trim(), "5", "{}", stderr(&o));
    let cmd = format!("{} exec -t box sh -c 'tty'", docker_bin().display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().unwrap(), DOCKER_TIMEOUT);
    assert!(stdout(&o).contains("/dev/pts/"), "{}", stdout(&o));
    d.docker_ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; echo bg > /tmp/bg",
    ]);
    assert!(wait_until(Duration::from_secs(5), || {
        d.docker(&["exec", "box", "cat", "/tmp/bg"]).stdout == b"bg\n"
    }));
    let o = d.docker(&["exec", "box", "nope"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
}

/// logs -f follows until the container ends; --tail, -t.
#[test]
fn logs_follow_ends_with_the_container() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "bb",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo bye >&2",
    ]);
    let t0 = Instant::now();
    let o = d.docker(&["logs", "-f", "talk"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "line1\nline2\nline3\n");
    assert_eq!(stderr(&o), "bye\n");
    assert!(t0.elapsed() < Duration::from_secs(15));
    // The last two lines are line3 (stdout) and bye (stderr).
    assert_eq!(d.docker_ok(&["logs", "--tail", "2", "talk"]), "line3\n");
    let ts = d.docker_ok(&["logs", "-t", "talk"]);
    assert!(
        ts.lines().all(|l| l.starts_with("20") && l.contains('T')),
        "{ts}"
    );
}

/// stats --no-stream, system df, info, diff, export, events seen live.
#[test]
fn stats_df_info_diff_export_events() {
    let d = Daemon::start();
    let mut ev = d
        .docker_cmd(&[
            "events",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
            "--filter",
            "type=container",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "bb",
        "sh",
        "-c",
        "echo x > /added; rm /bin/ls; sleep 300",
    ]);
    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "busy",
    ]);
    assert!(
        stats.starts_with("busy ") && stats.contains("/ 64MiB") && stats.trim().ends_with(" 1"),
        "{stats}"
    );
    let df = d.docker_ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(
        df.contains("Images 1 1") && df.contains("Containers 1 1"),
        "{df}"
    );
    let info = d.docker_ok(&[
        "info",
        "--format",
        "{{.ContainersRunning}} {{.Images}} {{.Driver}} {{.OSType}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("1 1 overlay2 linux {}", d.store.root().display())
    );
    assert!(wait_until(Duration::from_secs(5), || d
        .docker_ok(&["diff", "busy"])
        .contains("A /added")));
    let diff = d.docker_ok(&["diff", "busy"]);
    assert!(
        diff.contains("D /bin/ls") && !diff.contains("/etc/hosts"),
        "{diff}"
    );
    let tar = d.docker_cmd(&["export", "busy"]).output().unwrap();
    let listing = std::process::Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&tar.stdout)?;
            c.wait_with_output()
        })
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.contains("./added") && names.contains("./bin/sh") && !names.contains("./bin/ls\n"),
        "{names}"
    );
    d.docker_ok(&["kill", "busy"]);
    assert!(wait_until(Duration::from_secs(5), || {
        d.inspect("busy", "{{.State.Status}}") == "exited"
    }));
    // A stopped container's stats are zeros, not an error.
    let stopped = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "busy",
    ]);
    assert_eq!(stopped.trim(), "busy 0");
    // start and die of `busy`, live.
    let mut out = ev.stdout.take().unwrap();
    let mut seen = String::new();
    let end = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains("die busy") && Instant::now() < end {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(
        seen.contains("start busy") && seen.contains("die busy"),
        "{seen}"
    );
    // The same from the journal: since/until replay, then the command ends.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let since = (now - 120).to_string();
    let until = (now + 1).to_string();
    let past = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=busy",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = past.lines().collect();
    assert!(
        actions.starts_with(&["create", "start"]) && actions.contains(&"die"),
        "{past}"
    );
    // update: a change barge cannot make is refused, not ignored.
    let o = d.docker(&["update", "--cpu-shares", "512", "busy"]);
    assert!(
        !o.status.success() && stderr(&o).contains("not supported"),
        "{}",
        stderr(&o)
    );
}

/// --network: a user network made with `docker network create`; containers on it reach
/// each other by name.
#[test]
fn user_network_and_name_resolution() {
    let d = Daemon::start();
    let net = format!("dn{}", std::process::id());
    d.docker_ok(&["network", "create", &net]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        &net,
        "-e",
        "BODY=by-name",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            &net,
            "bb",
            "wget",
            "-qO-",
            "http://srv/",
        ]);
        got = format!("{}{}", stdout(&o), stderr(&o));
        o.status.success()
    });
    assert!(ok, "{got}");
    assert_eq!(got.trim(), "by-name");
    assert_eq!(d.inspect("srv", "{{.HostConfig.NetworkMode}}"), net);
    d.docker_ok(&["rm", "-f", "srv"]);
    d.docker_ok(&["network", "rm", &net]);
}

/// `docker start -a` of a created container, `docker attach` to a running one.
#[test]
fn start_attached_and_attach() {
    let d = Daemon::start();
    d.docker_ok(&[
        "create",
        "--name",
        "once",
        "bb",
        "sh",
        "-c",
        "echo once; exit 2",
    ]);
    let o = d.docker(&["start", "-a", "once"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stdout(&o), "once\n");
    d.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "bb",
        "sh",
        "-c",
        "read line; echo got:$line; sleep 0.2",
    ]);
    let o = d.docker_stdin(&["attach", "echoer"], b"hello\n");
    assert_eq!(stdout(&o), "got:hello\n", "{}", stderr(&o));
    assert!(wait_until(Duration::from_secs(5), || {
        d.inspect("echoer", "{{.State.Status}}") == "exited"
    }));
}

/// Flags barge cannot honour are refused with a clear message naming the field, and leave
/// no container; the ones it maps take effect.
#[test]
fn unsupported_flags_are_refused_supported_ones_apply() {
    let d = Daemon::start();
    for (flags, field) in [
        (&["--device", "/dev/null"][..], "HostConfig.Devices"),
        (&["--ulimit", "nofile=10:10"][..], "HostConfig.Ulimits"),
        (&["--oom-kill-disable"][..], "HostConfig.OomKillDisable"),
        (&["--log-driver", "syslog"][..], "syslog"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "true"]);
        let o = d.docker(&args);
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(field) && stderr(&o).contains("not supported"),
            "{flags:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--hostname",
        "h1",
        "--pids-limit",
        "20",
        "bb",
        "sh",
        "-c",
        "hostname; touch /x 2>/dev/null || echo ro; grep CapEff /proc/self/status",
    ]);
    assert_eq!(out, "h1\nro\nCapEff:\t0000000000000000\n");
}

/// ctrl-p ctrl-q on an attached terminal detaches: `docker attach` ends, the container runs.
#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    d.docker_ok(&["run", "-dit", "--name", "shell", "bb", "sh"]);
    let cmd = format!("{} attach shell", docker_bin().display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    sin.write_all(b"echo mark$((6*7))\r").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    sin.write_all(b"\x10\x11").unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    drop(sin);
    let out = stdout(&o);
    assert!(out.contains("mark42"), "{out:?}");
    assert_eq!(
        d.inspect("shell", "{{.State.Status}}"),
        "running",
        "{out:?}"
    );
}

/// `docker run -it`: what is typed on the terminal reaches the process (attach before
/// start with stdin and a terminal).
#[test]
fn run_interactive_terminal() {
    let d = Daemon::start();
    let cmd = format!(
        "{} run -it --rm bb sh -c 'read x; echo got:$x'",
        docker_bin().display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    sin.write_all(b"typed\r").unwrap();
    let o = wait_output(child, Duration::from_secs(20));
    drop(sin);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("got:typed"), "{:?}", stdout(&o));
}

/// `docker update` changes a running container's limits in its cgroup (seen from inside),
/// in inspect, and for its next run.
#[test]
fn update_changes_limits_live_and_for_restarts() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run", "-d", "--name", "lim", "-m", "32m", "bb", "sleep", "300",
    ]);
    let read = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    let before = d.docker_ok(&["exec", "lim", "sh", "-c", read]);
    assert!(before.starts_with("33554432\n"), "{before}");
    d.docker_ok(&["update", "--memory", "64m", "--pids-limit", "50", "lim"]);
    let after = d.docker_ok(&["exec", "lim", "sh", "-c", read]);
    assert_eq!(after, "67108864\n50\n");
    assert_eq!(d.inspect("lim", "{{.HostConfig.Memory}}"), "67108864");
    // Kept for the next run.
    d.docker_ok(&["restart", "-t", "1", "lim"]);
    assert_eq!(
        d.docker_ok(&["exec", "lim", "sh", "-c", read]),
        "67108864\n50\n"
    );
    // Below docker's minimum: refused, nothing changed.
    let o = d.docker(&["update", "--memory", "1m", "lim"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(d.inspect("lim", "{{.HostConfig.Memory}}"), "67108864");
    d.docker_ok(&["rm", "-f", "lim"]);
}
