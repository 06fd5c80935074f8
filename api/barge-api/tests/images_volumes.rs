//! The docker 28 CLI against the daemon for images (pull from a local registry, inspect,
//! history, tag/rmi, save | load, import, login), volumes, networks and `docker cp`; and bad
//! input to those endpoints through the raw socket.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // the harness exports more than this file uses
mod common;

use barge_testutil::oci_image::{push_image, Image};
use barge_testutil::registry::Registry;
use common::*;

/// Pull from a local registry with the docker CLI: progress lines, the digest, the final
/// status; then the image is listed, inspected and has a history; a second pull is "up to
/// date"; tag and rmi behave as docker's.
#[test]
fn pull_inspect_history_tag_rmi() {
    let reg = Registry::start();
    let built = push_image(&reg, "tools/bb", "1", &Image::busybox());
    let d = Daemon::start();
    let name = format!("{}/tools/bb:1", reg.addr);
    let out = d.docker_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", built.manifest_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    // The raw stream carries docker's per-layer progress objects.
    let raw = d.request(
        "POST",
        &format!("/images/create?fromImage={}/tools/bb&tag=1", reg.addr),
        b"",
    );
    assert_eq!(raw.status, 200);
    let text = raw.text();
    assert!(
        text.contains("\"status\":\"Pulling from tools/bb\""),
        "{text}"
    );
    assert!(text.contains("Image is up to date for"), "{text}");
    let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &name]);
    assert_eq!(id.trim(), built.config_digest);
    let hist = d.docker_ok(&["history", "--no-trunc", "-q", &name]);
    assert!(hist.contains(&built.config_digest), "{hist}");
    d.docker_ok(&["tag", &name, "mine:v2"]);
    let ls = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(ls.contains("mine:v2") && ls.contains(&name), "{ls}");
    let only = d.docker_ok(&["images", "--filter", "reference=mine", "-q"]);
    assert_eq!(only.trim(), &built.config_digest[7..19]);
    let rmi = d.docker_ok(&["rmi", "mine:v2"]);
    assert!(rmi.contains("Untagged: mine:v2"), "{rmi}");
    // Unknown image: 404 with docker's text.
    let o = d.docker(&["image", "inspect", "nosuch:1"]);
    assert!(!o.status.success());
    let (st, _) = d.json("GET", "/images/nosuch:1/json", b"");
    assert_eq!(st, 404);
    // A pull of a missing tag ends the stream with docker's error object.
    let o = d.docker(&["pull", &format!("{}/tools/bb:nope", reg.addr)]);
    assert!(!o.status.success(), "{}", stdout(&o));
}

/// A registry with basic auth: `docker login` checks the credentials through `/auth`; a pull
/// carries them in X-Registry-Auth (the daemon stores nothing).
#[test]
fn login_and_pull_with_credentials() {
    let reg = Registry::start_basic_auth("carol", "pa55");
    push_image(&reg, "private", "1", &Image::busybox());
    let d = Daemon::start();
    let name = format!("{}/private:1", reg.addr);
    assert!(!d.docker(&["pull", &name]).status.success());
    let bad = d.docker(&["login", "-u", "carol", "-p", "wrong", &reg.addr]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("401"), "{}", stderr(&bad));
    let good = d.docker_ok(&["login", "-u", "carol", "-p", "pa55", &reg.addr]);
    assert!(good.contains("Login Succeeded"), "{good}");
    d.docker_ok(&["pull", &name]);
    // /distribution answers from the registry with the credentials of X-Registry-Auth.
    let (st, body) = d.json("GET", &format!("/distribution/{name}/json"), b"");
    assert_eq!(st, 401, "{body}");
}

/// `docker save | docker load` round trip, `docker import` with a change, and a load body
/// that is not an archive refused with a 400.
#[test]
fn save_load_import() {
    let d = Daemon::start();
    let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]);
    let saved = d.docker_cmd(&["save", "bb"]).output().unwrap();
    assert!(saved.status.success() && saved.stdout.len() > 100_000);
    d.docker_ok(&["rmi", "bb"]);
    let o = d.docker_stdin(&["load"], &saved.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Loaded image: bb:latest"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]),
        id
    );
    // (Not --rm: `docker run --rm` waits for condition=removed, the container endpoints' part.)
    let run = d.docker_ok(&["run", "bb", "echo", "loaded"]);
    assert_eq!(run.trim(), "loaded");

    // Import a rootfs tar with a CMD change.
    let rootfs = barge_testutil::busybox_rootfs();
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let o = d.docker_stdin(
        &["import", "-c", "CMD [\"echo\",\"imported\"]", "-", "imp:1"],
        &tar.stdout,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("sha256:"), "{}", stdout(&o));
    assert_eq!(d.docker_ok(&["run", "imp:1"]).trim(), "imported");

    let r = d.request("POST", "/images/load", b"this is not a tar archive at all");
    assert_eq!(r.status, 400, "{}", r.text());
}

/// A load body far bigger than the daemon would want to hold is streamed: the daemon's RSS
/// stays far below the body's size while it reads it (the body is garbage after a valid
/// start, so the load fails at the end, having read it all).
#[test]
fn huge_load_body_is_streamed() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    let mut s = d.connect();
    let size: usize = 128 << 20;
    let head = format!(
        "POST /images/load HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    // One tar header for a big blob entry, then its content.
    let mut h = tar::Header::new_gnu();
    h.set_path(format!("blobs/sha256/{}", "ab".repeat(32)))
        .unwrap();
    h.set_size((size - 1024) as u64);
    h.set_mode(0o644);
    h.set_cksum();
    s.write_all(h.as_bytes()).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let mut sent = 512;
    let mut peak = 0u64;
    while sent < size {
        let n = chunk.len().min(size - sent);
        if s.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n;
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        let rss: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        peak = peak.max(rss);
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert!(
        peak < 64 * 1024,
        "daemon RSS peaked at {peak} KiB while reading a 128 MiB body"
    );
    assert!(
        sent >= size / 2,
        "the daemon stopped reading after {sent} bytes"
    );
}

#[test]
fn volumes_create_ls_inspect_rm_prune() {
    let d = Daemon::start();
    d.docker_ok(&["volume", "create", "--label", "team=a", "v1"]);
    d.docker_ok(&["volume", "create", "v2"]);
    let ls = d.docker_ok(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(ls.trim(), "v1");
    let mp = d.docker_ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Labels.team}}",
        "v1",
    ]);
    assert!(mp.trim().ends_with("/volumes/v1/_data a"), "{mp}");
    d.docker_ok(&[
        "run", "-d", "--name", "user", "-v", "v1:/data", "bb", "sleep", "60",
    ]);
    let busy = d.docker(&["volume", "rm", "v1"]);
    assert!(!busy.status.success());
    let (st, _) = d.json("DELETE", "/volumes/v1", b"");
    assert_eq!(st, 409);
    let dangling = d.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), "v2");
    let (st, body) = d.json("POST", "/volumes/create", br#"{"Name":"x","Driver":"nfs"}"#);
    assert_eq!(st, 400, "{body}");
    let (st, _) = d.json("POST", "/volumes/create", b"{not json");
    assert_eq!(st, 400);
    let (st, _) = d.json("POST", "/volumes/create", br#"{"Name":7}"#);
    assert_eq!(st, 400);
    let pruned = d.docker_ok(&["volume", "prune", "-af"]);
    assert!(pruned.contains("v2") && !pruned.contains("v1"), "{pruned}");
    d.docker_ok(&["rm", "-f", "user"]);
    d.docker_ok(&["volume", "rm", "v1"]);
    let (st, _) = d.json("GET", "/volumes/v1", b"");
    assert_eq!(st, 404);
}

#[test]
fn networks_create_connect_inspect_rm() {
    let d = Daemon::start();
    d.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.231.7.0/24",
        "--gateway",
        "10.231.7.1",
        "--label",
        "k=v",
        "d2net",
    ]);
    let dup = d.docker(&["network", "create", "d2net"]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    let ls = d.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "label=k=v",
    ]);
    assert_eq!(ls.trim(), "d2net");
    let ipam = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
        "d2net",
    ]);
    assert_eq!(ipam.trim(), "10.231.7.0/24 10.231.7.1");
    d.docker_ok(&["run", "-d", "--name", "peer", "bb", "sleep", "60"]);
    d.docker_ok(&["network", "connect", "--alias", "pal", "d2net", "peer"]);
    let members = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "d2net",
    ]);
    assert!(members.starts_with("peer 10.231.7."), "{members}");
    // The container sees the new interface on the network's subnet.
    let addrs = d.docker_ok(&["exec", "peer", "ip", "-4", "addr"]);
    assert!(addrs.contains("10.231.7."), "{addrs}");
    let busy = d.docker(&["network", "rm", "d2net"]);
    assert!(!busy.status.success());
    d.docker_ok(&["network", "disconnect", "d2net", "peer"]);
    d.docker_ok(&["network", "rm", "d2net"]);
    let (st, _) = d.json("GET", "/networks/d2net", b"");
    assert_eq!(st, 404);
    let (st, _) = d.json(
        "POST",
        "/networks/create",
        br#"{"Name":"x","Driver":"overlay"}"#,
    );
    assert_eq!(st, 400);
    let (st, _) = d.json("POST", "/networks/create", b"[");
    assert_eq!(st, 400);
    d.docker_ok(&["rm", "-f", "peer"]);
}

/// `docker cp` both ways, into the rootfs and into a named volume, on a running and on a
/// stopped container.
#[test]
fn cp_both_ways() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hello.txt");
    std::fs::write(&f, "hi there\n").unwrap();
    d.docker_ok(&["volume", "create", "cpvol"]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "cpc",
        "-v",
        "cpvol:/data",
        "bb",
        "sleep",
        "60",
    ]);
    d.docker_ok(&["cp", f.to_str().unwrap(), "cpc:/tmp/"]);
    d.docker_ok(&["cp", f.to_str().unwrap(), "cpc:/data/in-volume.txt"]);
    let seen = d.docker_ok(&[
        "exec",
        "cpc",
        "cat",
        "/tmp/hello.txt",
        "/data/in-volume.txt",
    ]);
    assert_eq!(seen, "hi there\nhi there\n");
    let vol = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(vol.trim()).join("in-volume.txt")).unwrap(),
        "hi there\n"
    );
    d.docker_ok(&[
        "exec",
        "cpc",
        "sh",
        "-c",
        "mkdir -p /srv/t/u && echo deep > /srv/t/u/f && ln -s /etc/passwd /srv/t/link",
    ]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    d.docker_ok(&["cp", "cpc:/srv/t", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("t/u/f")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("t/link")).unwrap(),
        std::path::Path::new("/etc/passwd"),
        "a symlink is copied as a symlink"
    );
    let r = d.request("HEAD", "/containers/cpc/archive?path=/srv/t", b"");
    assert_eq!(r.status, 200);
    assert!(r.header("X-Docker-Container-Path-Stat").is_some());
    let (st, _) = d.json("GET", "/containers/cpc/archive?path=/no/such", b"");
    assert_eq!(st, 404);
    d.docker_ok(&["stop", "-t", "1", "cpc"]);
    d.docker_ok(&["cp", f.to_str().unwrap(), "cpc:/tmp/while-stopped.txt"]);
    let back = dir.path().join("back.txt");
    d.docker_ok(&["cp", "cpc:/tmp/while-stopped.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "hi there\n");
    d.docker_ok(&["rm", "-f", "cpc"]);
}

/// A hostile tar sent to PUT archive cannot write outside the container: `../` names are
/// refused, an absolute symlink planted in the container is not followed (neither on the
/// way to the destination, which resolves inside the container, nor by later entries).
#[test]
fn put_archive_hostile_tar_stays_inside() {
    let d = Daemon::start();
    d.docker_ok(&["run", "-d", "--name", "hx", "bb", "sleep", "60"]);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    // The container plants a symlink to the host directory's path (meaningless inside it).
    d.docker_ok(&[
        "exec",
        "hx",
        "sh",
        "-c",
        &format!("mkdir -p /w && ln -s {target} /w/esc"),
    ]);

    let tar_of = |entries: &[(&str, tar::EntryType, &str, &[u8])]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name(link).unwrap();
            }
            // Names set raw: `tar` refuses `..` through set_path.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let dotdot = tar_of(&[(
        "../../../../../../../../tmp/pwned-by-cp",
        tar::EntryType::Regular,
        "",
        b"x",
    )]);
    let r = d.request("PUT", "/containers/hx/archive?path=/w", &dotdot);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!std::path::Path::new("/tmp/pwned-by-cp").exists());

    // Through the planted symlink as a parent: refused, nothing lands in the host dir.
    let via = tar_of(&[("esc/owned", tar::EntryType::Regular, "", b"x")]);
    let r = d.request("PUT", "/containers/hx/archive?path=/w", &via);
    assert_eq!(r.status, 400, "{}", r.text());
    // The destination itself through the symlink: resolved inside the container (where the
    // host path does not exist), so 404, and still nothing outside.
    let plain = tar_of(&[("owned2", tar::EntryType::Regular, "", b"x")]);
    let r = d.request("PUT", "/containers/hx/archive?path=/w/esc", &plain);
    assert_eq!(r.status, 404, "{}", r.text());
    // A symlink entry then a file through it.
    let chain = tar_of(&[
        ("s", tar::EntryType::Symlink, &target, b""),
        ("s/owned3", tar::EntryType::Regular, "", b"x"),
    ]);
    let r = d.request("PUT", "/containers/hx/archive?path=/w", &chain);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing was written outside the container"
    );
    d.docker_ok(&["rm", "-f", "hx"]);
}
