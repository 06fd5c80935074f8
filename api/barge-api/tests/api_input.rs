//! Bad input over the raw API: docker's status codes and `{"message"}` errors, bodies
//! refused before anything is made.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn bad_bodies_and_unknown_things_get_docker_errors() {
    let d = Daemon::start();
    let create = |body: &[u8]| d.json("POST", "/containers/create", body);

    let (st, v) = create(b"{not json");
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("invalid JSON"),
        "{v}"
    );

    let (st, v) = create(br#"{"Image": 5}"#);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("Image")
            || v["message"].as_str().unwrap().contains("string"),
        "{v}"
    );

    let (st, v) = create(br#"{"Image":"bb","Tty":"yes"}"#);
    assert_eq!(st, 400, "{v}");

    let (st, v) = create(br#"{"Image":"bb","HostConfig":{"OomKillDisable":true}}"#);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("HostConfig.OomKillDisable"),
        "{v}"
    );

    let (st, v) = create(br#"{"Image":"bb","HostConfig":{"LogConfig":{"Type":"syslog"}}}"#);
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("syslog"), "{v}");

    // Zero values, as the CLI always sends them, are fine.
    let (st, v) = create(
        br#"{"Image":"bb","Cmd":["true"],"Healthcheck":null,"HostConfig":{"OomKillDisable":false,"ShmSize":0,"Ulimits":[],"MemorySwappiness":null,"Devices":[],"ConsoleSize":[0,0],"NetworkMode":"default","RestartPolicy":{"Name":"no","MaximumRetryCount":0}},"NetworkingConfig":{"EndpointsConfig":{}}}"#,
    );
    assert_eq!(st, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();

    // A huge body is refused (413), not read into memory.
    let mut huge = br#"{"Image":"bb","Env":[""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 8 << 20));
    huge.extend_from_slice(br#""]}"#);
    let r = d.request("POST", "/containers/create", &huge);
    assert_eq!(r.status, 413, "{}", r.text());

    let (st, v) = create(br#"{"Image":"no-such-image:1"}"#);
    assert_eq!(st, 404, "{v}");
    let (st, v) = d.json("GET", "/containers/nope/json", b"");
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["message"], "No such container: nope");
    let (st, _) = d.json(
        "POST",
        "/containers/create?name=twice",
        br#"{"Image":"bb"}"#,
    );
    assert_eq!(st, 201);
    let (st, v) = d.json(
        "POST",
        "/containers/create?name=twice",
        br#"{"Image":"bb"}"#,
    );
    assert_eq!(st, 409, "{v}");
    let (st, v) = d.json(
        "POST",
        &format!("/containers/{id}/wait?condition=sometime"),
        b"",
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = d.json("POST", &format!("/containers/{id}/kill"), b"");
    assert_eq!(st, 409, "{v}");
    // An empty build context: docker's in-stream error (the Dockerfile is not there).
    let (st, v) = d.json("POST", "/v1.47/build", b"");
    assert_eq!(st, 200, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no Dockerfile in the build context"),
        "{v}"
    );
    let (st, v) = d.json("GET", "/v1.99/containers/json", b"");
    assert_eq!(st, 400, "{v}");
    // Nothing was left half made by the refused requests: the two good creates only.
    assert_eq!(d.docker_ok(&["ps", "-aq"]).lines().count(), 2);
    assert_eq!(d.store.container_dirs().len(), 2);
}

/// The wait and attach of `docker run` come before the start: output from the first byte,
/// the exit code of that run (next-exit), `removed` after --rm's removal.
#[test]
fn attach_and_wait_before_start() {
    let d = Daemon::start();
    let (st, v) = d.json(
        "POST",
        "/containers/create",
        br#"{"Image":"bb","Cmd":["sh","-c","echo first; exit 7"]}"#,
    );
    assert_eq!(st, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    // Attach and wait first, on their own connections.
    let mut att = d.connect();
    use std::io::{Read, Write};
    write!(
        att,
        "POST /containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    .unwrap();
    let mut wait = d.connect();
    write!(
        wait,
        "POST /containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = d.request("POST", &format!("/containers/{id}/start"), b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let mut raw = Vec::new();
    att.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    assert_eq!(demux(&raw[end + 4..]), vec![(1u8, b"first\n".to_vec())]);
    let mut raw = Vec::new();
    wait.read_to_end(&mut raw).unwrap();
    let r = parse_response(&raw).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["StatusCode"], 7, "{}", r.text());
    // logs=1&stream=0: the log so far, then the end.
    let mut again = d.connect();
    write!(
        again,
        "POST /containers/{id}/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    again.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(demux(&raw[end + 4..]), vec![(1u8, b"first\n".to_vec())]);
    // Start again: 204; a second start of the running one: 304.
    let (st, _) = d.json(
        "POST",
        "/containers/create?name=slow",
        br#"{"Image":"bb","Cmd":["sleep","300"]}"#,
    );
    assert_eq!(st, 201);
    assert_eq!(d.request("POST", "/containers/slow/start", b"").status, 204);
    assert_eq!(d.request("POST", "/containers/slow/start", b"").status, 304);
}
