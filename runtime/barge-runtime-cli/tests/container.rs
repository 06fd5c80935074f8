//! What the container gets, observed from inside it (run as root).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;

use barge_testutil::{ok, stderr, stdout, Bundle, Runtime};
use serde_json::json;

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

/// Run `script` in a default container and return its stdout.
fn run_sh(b: &Bundle, id: &str) -> String {
    let r = rt();
    let out = ok(&r.run(b, id));
    assert!(r.leftovers().is_empty(), "state left: {:?}", r.leftovers());
    out
}

fn ns_inode(path: &str) -> String {
    fs::read_link(path).unwrap().to_string_lossy().into_owned()
}

#[test]
fn namespaces_differ_from_the_host_and_init_is_pid_1() {
    let b = Bundle::sh(
        "echo pid=$$; for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done",
    );
    let out = run_sh(&b, "ns");
    assert!(out.contains("pid=1\n"), "{out}");
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let host = ns_inode(&format!("/proc/self/ns/{n}"));
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{n}=")))
            .unwrap();
        assert!(
            !line.ends_with(&host),
            "{n} namespace shared with host: {line}"
        );
    }
}

#[test]
fn joins_a_namespace_by_path() {
    // A network namespace of our own making, held by a sleeping process.
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "30"])
        .spawn()
        .unwrap();
    let ns_path = format!("/proc/{}/ns/net", holder.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ns_inode(&ns_path) == ns_inode("/proc/self/ns/net") {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut b = Bundle::sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    for n in ns.iter_mut() {
        if n["type"] == "network" {
            n["path"] = json!(ns_path);
        }
    }
    b.write();
    let out = run_sh(&b, "joinns");
    let want = ns_inode(&ns_path);
    let _ = holder.kill();
    let _ = holder.wait();
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), want);
    assert_ne!(lines.next().unwrap(), ns_inode("/proc/self/ns/uts"));
}

#[test]
fn hostname_and_domainname() {
    let mut b = Bundle::sh("hostname; cat /proc/sys/kernel/domainname");
    b.config["hostname"] = json!("edge-node-7");
    b.config["domainname"] = json!("fleet.example");
    b.write();
    assert_eq!(run_sh(&b, "uts"), "edge-node-7\nfleet.example\n");
}

#[test]
fn time_namespace_offsets_apply() {
    let mut b = Bundle::sh("cut -d. -f1 /proc/uptime");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400, "nanosecs": 0}});
    b.write();
    let host: u64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: u64 = run_sh(&b, "timens").trim().parse().unwrap();
    assert!(
        inside >= host + 86400 && inside < host + 86400 + 60,
        "uptime inside {inside}, host {host}"
    );
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_uid() {
    let mut b = Bundle::sh("id -u; cat /proc/self/uid_map; sleep 0.2; echo done");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write();
    let out = run_sh(&b, "userns");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert_eq!(lines.next(), Some("done"));
}

#[test]
fn readonly_root_and_writable_tmpfs() {
    let mut b = Bundle::sh(
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; \
         touch /tmp/x && echo tmp-writable; grep ' /tmp ' /proc/self/mountinfo",
    );
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=1m"]
    }));
    b.write();
    let out = run_sh(&b, "rofs");
    assert!(out.contains("root-ro\n"), "{out}");
    assert!(out.contains("tmp-writable\n"), "{out}");
    let line = out.lines().find(|l| l.contains(" /tmp ")).unwrap();
    assert!(line.contains("nosuid") && line.contains("nodev"), "{line}");
    assert!(line.contains("size=1024k"), "{line}");
}

#[test]
fn no_pivot_moves_the_root() {
    let b = Bundle::sh("ls /bin/busybox && cat /etc/hostname");
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    let out = ok(&r.exec(&["run", "--no-pivot", "--bundle", &p, "nopivot"]));
    assert_eq!(out, "/bin/busybox\nbusybox\n");
}

#[test]
fn bind_mounts_with_options_and_propagation() {
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("data"), "from-host").unwrap();
    let mut b = Bundle::sh(
        "cat /ro/data; echo x > /ro/new 2>/dev/null && echo ro-writable || echo ro-readonly; \
         echo y > /rw/new && echo rw-ok; cat /file; grep -E ' /(ro|rw) ' /proc/self/mountinfo",
    );
    let src = host.path().to_string_lossy();
    let file = host.path().join("data").to_string_lossy().into_owned();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid"]}));
    m.push(json!({"destination": "/rw", "type": "bind", "source": src, "options": ["bind", "rprivate"]}));
    m.push(
        json!({"destination": "/file", "type": "bind", "source": file, "options": ["bind", "ro"]}),
    );
    b.write();
    let out = run_sh(&b, "binds");
    assert!(out.starts_with("from-host"), "{out}");
    assert!(out.contains("ro-readonly"), "{out}");
    assert!(out.contains("rw-ok"), "{out}");
    assert!(
        out.contains("from-host\nfrom-host") || out.matches("from-host").count() == 2,
        "{out}"
    );
    let ro = out.lines().find(|l| l.contains(" /ro ")).unwrap();
    assert!(ro.split(' ').nth(5).unwrap().starts_with("ro"), "{ro}");
    assert!(ro.contains("nosuid"), "{ro}");
    assert_eq!(fs::read_to_string(host.path().join("new")).unwrap(), "y\n");
}

#[test]
fn rootfs_propagation_shared_and_private() {
    for (prop, want_shared) in [("rshared", true), ("private", false)] {
        let mut b = Bundle::sh("awk '$5 == \"/\" {print}' /proc/self/mountinfo");
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        b.write();
        let out = run_sh(&b, &format!("prop-{prop}"));
        assert_eq!(out.contains("shared:"), want_shared, "{prop}: {out}");
    }
}

#[test]
fn symlinked_mount_target_cannot_escape_the_rootfs() {
    let outside = tempfile::tempdir().unwrap();
    let mut b = Bundle::sh("ls -d /escape/sub && echo inside");
    let rootfs = b.own_rootfs();
    std::os::unix::fs::symlink(outside.path(), rootfs.join("escape")).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    b.write();
    let out = run_sh(&b, "escape");
    assert!(out.contains("inside"), "{out}");
    assert!(
        !outside.path().join("sub").exists(),
        "mount target was created outside the rootfs"
    );
    let host_mounts = barge_testutil::host_mounts_containing(&outside.path().to_string_lossy());
    assert!(host_mounts.is_empty(), "{host_mounts:?}");
}

#[test]
fn default_devices_and_dev_symlinks() {
    let b = Bundle::sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; echo hi > /dev/null && echo null-ok",
    );
    let out = run_sh(&b, "devs");
    for want in [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n",
        "null-ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn linux_devices_are_created_with_mode_and_owner() {
    let mut b = Bundle::sh("stat -c '%n %F %t:%T %a %u:%g' /dev/mine /dev/sub/blk");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 2000},
        {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 0, "fileMode": 432}
    ]);
    b.write();
    let out = run_sh(&b, "linuxdevs");
    assert!(
        out.contains("/dev/mine character special file 1:3 600 1000:2000"),
        "{out}"
    );
    assert!(
        out.contains("/dev/sub/blk block special file 7:0 660 0:0"),
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = Bundle::sh(
        "cat /proc/keys | wc -c; ls /proc/acpi | wc -l; \
         echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo sys-writable || echo sys-ro; \
         echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro; \
         cat /masked-file 2>&1 | wc -c",
    );
    let rootfs = b.own_rootfs();
    fs::write(rootfs.join("masked-file"), "secret").unwrap();
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/masked-file"));
    b.write();
    let out = run_sh(&b, "masks");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "sys-ro", "sysrq-ro", "0"], "{out}");
}

#[test]
fn sysctl_is_set_in_the_container_namespace() {
    let mut b = Bundle::sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.write();
    assert_eq!(run_sh(&b, "sysctl"), "1\n1234\n");
    let host = fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    assert_ne!(host.trim(), "1234");
}

#[test]
fn process_user_groups_umask_cwd_env() {
    let mut b = Bundle::sh("id; umask; pwd; echo $GREETING; touch /tmp/f; stat -c %a /tmp/f");
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 63});
    b.config["process"]["cwd"] = json!("/work/dir");
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("GREETING=hello edge"));
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]
    }));
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/work", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]
    }));
    b.write();
    let out = run_sh(&b, "user");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "uid=1000(user) gid=1000(user) groups=2000(extra),3000"
    );
    assert_eq!(lines[1], "0077");
    assert_eq!(lines[2], "/work/dir");
    assert_eq!(lines[3], "hello edge");
    assert_eq!(lines[4], "600");
}

#[test]
fn rlimits_and_oom_score_adj() {
    let mut b = Bundle::sh("ulimit -Sn; ulimit -Hn; ulimit -Sc; cat /proc/self/oom_score_adj");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.config["process"]["oomScoreAdj"] = json!(345);
    b.write();
    assert_eq!(run_sh(&b, "rlimits"), "512\n2048\n0\n345\n");
}

fn cap_mask(names: &[u32]) -> String {
    format!("{:016x}", names.iter().fold(0u64, |m, c| m | (1 << c)))
}

#[test]
fn capabilities_all_five_sets_and_no_new_privs() {
    let mut b = Bundle::sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10, CAP_NET_RAW=13, CAP_SYS_ADMIN=21
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.write();
    let out = run_sh(&b, "caps");
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
            .unwrap()
            .to_string()
    };
    // sh is not a file with capabilities: after exec as root, the kernel computes
    // P' = (P(inh) & F(inh)) | (P(bnd) & F(perm)) | P'(amb) with root's full file sets.
    assert_eq!(get("CapBnd"), cap_mask(&[0, 5, 10, 13]));
    assert_eq!(get("CapInh"), cap_mask(&[5, 10]));
    assert_eq!(get("CapAmb"), cap_mask(&[10]));
    assert_eq!(get("NoNewPrivs"), "0");
    // uid 0 exec: permitted/effective become the bounding set (file caps of root).
    assert_eq!(get("CapPrm"), cap_mask(&[0, 5, 10, 13]));

    let mut b = Bundle::sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    b.write();
    let out = run_sh(&b, "caps-user");
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
            .unwrap()
            .to_string()
    };
    // A non-root user keeps exactly the ambient set across exec.
    assert_eq!(get("CapEff"), cap_mask(&[10]));
    assert_eq!(get("CapPrm"), cap_mask(&[10]));
    assert_eq!(get("CapAmb"), cap_mask(&[10]));
    assert_eq!(get("CapBnd"), cap_mask(&[5, 10]));
    assert_eq!(get("NoNewPrivs"), "1");
}

/// Make `fd` the child's fd 3 (the first fd after stdio a runtime may pass on).
fn pass_as_fd3(cmd: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 in the child between fork and exec only touches fds.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn preserve_fds_passes_exactly_the_given_fds() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (mut reader, writer) = std::io::pipe().unwrap();
    let b = Bundle::sh("echo through-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    let mut cmd = r.cmd(&["run", "--preserve-fds", "1", "--bundle", &p, "fds"]);
    pass_as_fd3(&mut cmd, writer.as_raw_fd());
    let out = cmd.output().unwrap();
    drop(writer);
    let listing = ok(&out);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through-fd3\n");
    // 0-2, the preserved 3, and the fd `ls` opens for /proc/self/fd.
    assert_eq!(
        listing.split_whitespace().take(4).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    assert!(
        listing.split_whitespace().count() <= 5,
        "extra fds leaked: {listing}"
    );
}

#[test]
fn listen_fds_are_passed_with_env() {
    let b = Bundle::sh("echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    let f = fs::File::open("/dev/null").unwrap();
    let mut cmd = r.cmd(&["run", "--bundle", &p, "listenfds"]);
    cmd.env("LISTEN_FDS", "1");
    pass_as_fd3(&mut cmd, std::os::fd::AsRawFd::as_raw_fd(&f));
    let out = ok(&cmd.output().unwrap());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1 1"));
    let fds: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&fds[..4], ["0", "1", "2", "3"]);
}

#[test]
fn container_sits_in_a_cgroup_under_our_own_and_it_is_removed() {
    let mut b = Bundle::sh("sleep 30");
    b.config["linux"]["cgroupsPath"] = json!("barge-test-rel/cgpath");
    b.write();
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    let st = r
        .cmd(&["run", "-d", "--bundle", &p, "cg"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st: serde_json::Value = serde_json::from_str(&ok(&r.exec(&["state", "cg"]))).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let own_mem = barge_testutil::own_cgroup("memory").unwrap();
    let want = format!("{}/barge-test-rel/cgpath", own_mem.trim_end_matches('/'));
    let mem_line = cg.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(mem_line.ends_with(&want), "{mem_line} vs {want}");
    let dir = format!("/sys/fs/cgroup/memory{want}");
    let procs = fs::read_to_string(format!("{dir}/cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    ok(&r.exec(&["delete", "--force", "cg"]));
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
    let _ = fs::remove_dir(format!("/sys/fs/cgroup/memory{own_mem}/barge-test-rel"));
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("hooks.log");
    let logp = log.to_string_lossy().into_owned();
    let hook = |name: &str, path: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r s; echo \"{name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"')\" >> {path}")]})
    };
    let mut b = Bundle::sh("echo process >> /hooklog/hooks.log");
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hooklog", "type": "bind", "source": logdir.path(), "options": ["bind"]
    }));
    b.config["hooks"] = json!({
        "prestart": [hook("prestart", &logp)],
        "createRuntime": [hook("createRuntime", &logp)],
        "createContainer": [hook("createContainer", &logp)],
        "startContainer": [hook("startContainer", "/hooklog/hooks.log")],
        "poststart": [hook("poststart", &logp)],
        "poststop": [hook("poststop", &logp)]
    });
    b.write();
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    ok(&r.exec(&["create", "--bundle", &p, "hooks"]));
    ok(&r.exec(&["start", "hooks"]));
    // Wait for the process to exit, then delete (poststop).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st = ok(&r.exec(&["state", "hooks"]));
        if st.contains("\"stopped\"") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&r.exec(&["delete", "hooks"]));
    let got = fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = got.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names.len(), 7, "{got}");
    assert_eq!(
        names[..4],
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "{got}"
    );
    // The process and the poststart hook run concurrently.
    let mut middle = names[4..6].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["poststart", "process"], "{got}");
    assert_eq!(names[6], "poststop", "{got}");
    assert!(
        got.contains("createRuntime \"status\":\"creating\""),
        "{got}"
    );
    assert!(got.contains("poststop \"status\":\"stopped\""), "{got}");
}

#[test]
fn terminal_is_sent_over_the_console_socket() {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::sh("tty; test -t 0 && echo stdin-is-tty; stty size");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    b.write();
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    let s = sock.to_string_lossy().into_owned();
    let accept = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (_, fd) = barge_testutil::recv_with_fd(&conn);
        fd.expect("no fd received")
    });
    ok(&r.exec(&["create", "--console-socket", &s, "--bundle", &p, "tty"]));
    let master = accept.join().unwrap();
    ok(&r.exec(&["start", "tty"]));
    let mut f = fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Read until the pty hangs up (EIO) when the process exits.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    assert!(out.contains("stdin-is-tty"), "{out}");
    assert!(out.contains("33 101"), "{out}");
    let _ = r.exec(&["delete", "--force", "tty"]);
}

#[test]
fn run_returns_the_exit_code_and_output() {
    let b = Bundle::sh("echo out; echo err >&2; exit 42");
    let r = rt();
    let o = r.run(&b, "exitcode");
    assert_eq!(o.status.code(), Some(42));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"));
    assert!(r.leftovers().is_empty());
}

#[test]
fn rootfs_files_are_owned_as_on_disk() {
    let rootfs = barge_testutil::busybox_rootfs();
    let uid = fs::metadata(rootfs.join("bin/busybox")).unwrap().uid();
    let b = Bundle::sh("stat -c %u /bin/busybox");
    assert_eq!(run_sh(&b, "owner").trim(), uid.to_string());
}

#[test]
fn lsm_fields_are_not_silently_dropped() {
    // This host has neither AppArmor nor SELinux enabled.
    assert!(!std::path::Path::new("/sys/fs/selinux/enforce").exists());
    assert!(
        !std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
    );
    let mut b = Bundle::sh("echo ran");
    b.config["process"]["apparmorProfile"] = json!("docker-default");
    b.write();
    let r = rt();
    let o = r.run(&b, "apparmor");
    assert_eq!(stdout(&o), "ran\n");
    assert!(
        stderr(&o).contains("apparmorProfile \"docker-default\" ignored"),
        "{}",
        stderr(&o)
    );
    let mut b = Bundle::sh("echo ran");
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    b.write();
    let o = r.run(&b, "selinux");
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("SELinux is not enabled"),
        "{}",
        stderr(&o)
    );
    assert!(r.leftovers().is_empty());
}

#[test]
fn pause_stops_a_counting_loop_and_resume_restarts_it() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    // Written via rename so a freeze never leaves a truncated file behind.
    let mut b = Bundle::sh("i=0; while :; do i=$((i+1)); echo $i > /out/t; mv /out/t /out/n; done");
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/out", "type": "bind", "source": dir.path(), "options": ["bind"]
    }));
    b.write();
    let r = rt();
    let p = b.path().to_string_lossy().into_owned();
    ok(&r.exec(&["run", "-d", "--bundle", &p, "counting"]));
    let read = || -> u64 {
        for _ in 0..200 {
            if let Some(n) = fs::read_to_string(&counter)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("no counter value in {}", counter.display());
    };
    let wait = || std::thread::sleep(std::time::Duration::from_millis(300));
    wait();
    let a = read();
    wait();
    assert!(read() > a, "not counting before pause");
    ok(&r.exec(&["pause", "counting"]));
    let st = ok(&r.exec(&["state", "counting"]));
    assert!(st.contains("\"status\": \"paused\""), "{st}");
    let frozen = read();
    wait();
    assert_eq!(read(), frozen, "counted while paused");
    let again = r.exec(&["pause", "counting"]);
    assert!(!again.status.success() && stderr(&again).contains("paused"));
    ok(&r.exec(&["resume", "counting"]));
    wait();
    assert!(read() > frozen, "not counting after resume");
    let st = ok(&r.exec(&["state", "counting"]));
    assert!(st.contains("\"status\": \"running\""), "{st}");
    // A paused container can still be force-deleted.
    ok(&r.exec(&["pause", "counting"]));
    ok(&r.exec(&["delete", "--force", "counting"]));
    assert!(r.leftovers().is_empty());
}
