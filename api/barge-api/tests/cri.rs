//! The CRI v1 server of `barge daemon`, driven by a tonic client generated from the same
//! protos (barge_cri::proto) over a temp CRI socket, against real containers: a pod of two
//! containers sharing network and IPC namespaces, hostname and DNS from the sandbox config,
//! ExecSync exit codes, output and timeouts, stats against the cgroup files, container events
//! in order, CRI-format logs and their reopening, removal leaving nothing behind, and bad
//! input answered with clear gRPC statuses and no half-made pod.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use barge_cri::proto::image_service_client::ImageServiceClient;
use barge_cri::proto::runtime_service_client::RuntimeServiceClient;
use barge_cri::proto::*;
use common::{wait_until, Daemon};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

struct Cri {
    d: Daemon,
    /// Holds the CRI socket and the pods' log directories.
    tmp: tempfile::TempDir,
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
}

impl Cri {
    async fn start() -> Cri {
        let tmp = tempfile::Builder::new()
            .prefix("cri")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = tmp.path().join("cri.sock");
        let flag = format!("unix://{}", sock.display());
        let d = tokio::task::spawn_blocking(move || Daemon::start_with(&["--cri", &flag]))
            .await
            .unwrap();
        let path = sock.clone();
        let channel = Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let p = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(p).await?,
                    ))
                }
            }))
            .await
            .unwrap();
        Cri {
            d,
            tmp,
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        }
    }

    fn logs(&self) -> PathBuf {
        self.tmp.path().join("logs")
    }

    fn sandbox(&self, name: &str) -> PodSandboxConfig {
        let dir = self.logs().join(name);
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: format!("{name}-host"),
            log_directory: dir.display().to_string(),
            dns_config: Some(DnsConfig {
                servers: vec!["10.0.0.53".into()],
                searches: vec!["svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            labels: HashMap::from([("app".into(), name.into())]),
            ..Default::default()
        }
    }

    async fn run_pod(&mut self, name: &str) -> String {
        let config = self.sandbox(name);
        std::fs::create_dir_all(&config.log_directory).unwrap();
        self.rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e:?}\n{}", self.d.log()))
            .into_inner()
            .pod_sandbox_id
    }

    fn container(name: &str, args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "bb".into(),
                ..Default::default()
            }),
            command: args.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}/0.log"),
            labels: HashMap::from([("c".into(), name.into())]),
            ..Default::default()
        }
    }

    async fn create(&mut self, pod: &str, name: &str, args: &[&str]) -> String {
        let config = Self::container(name, args);
        self.create_with(pod, name, config).await.unwrap()
    }

    async fn create_with(
        &mut self,
        pod: &str,
        name: &str,
        config: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let sc = self.sandbox(name);
        self.rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(sc),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    async fn start_c(&mut self, id: &str) {
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer {id}: {e:?}\n{}", self.d.log()));
    }

    async fn exec(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<ExecSyncResponse, tonic::Status> {
        self.rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            })
            .await
            .map(|r| r.into_inner())
    }

    /// ExecSync that must exit 0; its stdout.
    async fn out(&mut self, id: &str, cmd: &[&str]) -> String {
        let r = self.exec(id, cmd, 10).await.unwrap();
        assert_eq!(
            r.exit_code,
            0,
            "{cmd:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        String::from_utf8(r.stdout).unwrap()
    }

    async fn state(&mut self, id: &str) -> i32 {
        self.rt
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
            .state
    }

    async fn pods(&mut self) -> Vec<PodSandbox> {
        self.rt
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items
    }
}

impl Drop for Cri {
    /// Pods the test left (a failed assertion) go with their namespaces and cgroups.
    fn drop(&mut self) {
        let out = self.d.store.run(&["pod", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.d.store.run(&["pod", "rm", "-f", id]);
        }
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("the call must fail");
    (e.code(), e.message().to_string())
}

/// Polls `f` on a blocking thread-free loop (tokio sleeps) for up to `secs`.
async fn eventually<F: FnMut() -> bool>(secs: u64, mut f: F) -> bool {
    for _ in 0..secs * 20 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_status_config_and_images() {
    let mut c = Cri::start().await;
    let v =
        c.rt.version(VersionRequest::default())
            .await
            .unwrap()
            .into_inner();
    assert_eq!(v.runtime_name, "barge");
    assert_eq!(v.runtime_api_version, "v1");
    let st =
        c.rt.status(StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
    let conds = st.status.unwrap().conditions;
    let ready = conds.iter().find(|x| x.r#type == "RuntimeReady").unwrap();
    assert!(ready.status);
    assert!(conds.iter().any(|x| x.r#type == "NetworkReady"));
    // UpdateRuntimeConfig: a CIDR is kept (Status shows it), a bad one refused.
    let upd = |cidr: &str| UpdateRuntimeConfigRequest {
        runtime_config: Some(RuntimeConfig {
            network_config: Some(NetworkConfig {
                pod_cidr: cidr.into(),
            }),
        }),
    };
    c.rt.update_runtime_config(upd("10.88.0.0/16"))
        .await
        .unwrap();
    let st =
        c.rt.status(StatusRequest { verbose: true })
            .await
            .unwrap()
            .into_inner();
    assert!(st.info["config"].contains("10.88.0.0/16"), "{:?}", st.info);
    let (k, m) = code(c.rt.update_runtime_config(upd("10.88.0.0/99")).await);
    assert_eq!(k, Code::InvalidArgument, "{m}");
    let (k, _) = code(
        c.rt.checkpoint_container(CheckpointContainerRequest::default())
            .await,
    );
    assert_eq!(k, Code::Unimplemented);
    // Images: bb is listed with its full name, its status found; a missing one is no error.
    let list = c
        .img
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    let bb = list
        .iter()
        .find(|i| i.repo_tags.iter().any(|t| t.ends_with("/bb:latest")))
        .unwrap_or_else(|| panic!("bb in {list:?}"));
    assert!(bb.id.starts_with("sha256:") && bb.size > 0, "{bb:?}");
    let spec = |s: &str| {
        Some(ImageSpec {
            image: s.into(),
            ..Default::default()
        })
    };
    let st = c
        .img
        .image_status(ImageStatusRequest {
            image: spec("bb"),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image.unwrap().id, bb.id);
    assert!(st.info["info"].contains(&bb.id));
    let st = c
        .img
        .image_status(ImageStatusRequest {
            image: spec("nosuch:1"),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none());
    c.img
        .remove_image(RemoveImageRequest {
            image: spec("nosuch:1"),
        })
        .await
        .unwrap();
    let (k, m) = code(
        c.img
            .pull_image(PullImageRequest {
                image: spec("Bad Name!"),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::InvalidArgument, "{m}");
    let (k, m) = code(
        c.img
            .pull_image(PullImageRequest {
                image: spec("localhost:1/x:1"),
                auth: Some(AuthConfig {
                    registry_token: "t".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(k, Code::InvalidArgument, "{m}");
    let fs = c
        .img
        .image_fs_info(ImageFsInfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    let used = fs.image_filesystems[0].used_bytes.unwrap().value;
    assert!(used > 0);
    // A tag of bb, then removed through the CRI: the image and all its names go.
    c.d.store.ok(&["tag", "bb", "bb2:x"]);
    c.img
        .remove_image(RemoveImageRequest {
            image: spec("bb2:x"),
        })
        .await
        .unwrap();
    let out = c.d.store.ok(&["images", "-q"]);
    assert!(out.trim().is_empty(), "images left: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_of_two_containers() {
    let mut c = Cri::start().await;
    // Events from the start, followed on their own task.
    let mut events =
        c.rt.get_container_events(GetEventsRequest::default())
            .await
            .unwrap()
            .into_inner();
    let pod = c.run_pod("web").await;
    let st =
        c.rt.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let status = st.status.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(status.metadata.unwrap().name, "web");
    let info: serde_json::Value = serde_json::from_str(&st.info["info"]).unwrap();
    let netns = PathBuf::from(info["sandbox"]["namespaces"]["network"].as_str().unwrap());
    assert!(netns.exists());
    let a = c.create(&pod, "a", &["sleep", "1000"]).await;
    let b = c.create(&pod, "b", &["sleep", "1000"]).await;
    assert_eq!(c.state(&a).await, ContainerState::ContainerCreated as i32);
    c.start_c(&a).await;
    c.start_c(&b).await;
    assert_eq!(c.state(&a).await, ContainerState::ContainerRunning as i32);
    // One network and one IPC namespace; hostname and DNS from the sandbox config.
    for ns in ["net", "ipc", "uts"] {
        let path = format!("/proc/self/ns/{ns}");
        let na = c.out(&a, &["readlink", &path]).await;
        let nb = c.out(&b, &["readlink", &path]).await;
        assert_eq!(na, nb, "{ns}");
    }
    let ino = std::fs::metadata(&netns)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let na = c.out(&a, &["readlink", "/proc/self/ns/net"]).await;
    assert_eq!(na.trim(), format!("net:[{ino}]"));
    c.out(&a, &["sh", "-c", "echo shared > /dev/shm/seg"]).await;
    assert_eq!(c.out(&b, &["cat", "/dev/shm/seg"]).await, "shared\n");
    assert_eq!(c.out(&b, &["hostname"]).await.trim(), "web-host");
    let resolv = c.out(&a, &["cat", "/etc/resolv.conf"]).await;
    assert!(resolv.contains("nameserver 10.0.0.53"), "{resolv}");
    assert!(resolv.contains("search svc.cluster.local"), "{resolv}");
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    // One talks to the other on localhost.
    let b2 = c
        .out(
            &b,
            &[
                "sh",
                "-c",
                "(echo hello-from-b | nc -l -p 7000 &) ; echo ok",
            ],
        )
        .await;
    assert_eq!(b2.trim(), "ok");
    let mut got = String::new();
    for _ in 0..50 {
        if let Ok(r) = c.exec(&a, &["nc", "127.0.0.1", "7000"], 5).await {
            got = String::from_utf8_lossy(&r.stdout).to_string();
            if got.contains("hello-from-b") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(got.contains("hello-from-b"), "{got:?}");
    // ExecSync: output on the right streams, the exit code, the timeout.
    let r = c
        .exec(&a, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
        .await
        .unwrap();
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 3)
    );
    let (k, m) = code(c.exec(&a, &["sleep", "30"], 1).await);
    assert_eq!(k, Code::DeadlineExceeded, "{m}");
    assert!(
        wait_until(Duration::from_secs(10), || !common::stdout(
            &c.d.store.run(&["top", &a])
        )
        .contains("sleep 30")),
        "the timed-out exec still runs"
    );
    // Stats: the CPU time between two reads of the container's cgroup file (found from its
    // host pid, in the verbose status: inside, its cgroup namespace shows "/").
    let cinfo =
        c.rt.container_status(ContainerStatusRequest {
            container_id: a.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info;
    let doc: serde_json::Value = serde_json::from_str(&cinfo["info"]).unwrap();
    let pid = doc["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0, "{doc}");
    let cg = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let cpuacct = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            ctl.split(',')
                .any(|x| x == "cpuacct")
                .then(|| path.to_string())
        })
        .unwrap();
    let file = Path::new("/sys/fs/cgroup/cpu,cpuacct")
        .join(cpuacct.trim_start_matches('/'))
        .join("cpuacct.usage");
    let file = if file.exists() {
        file
    } else {
        Path::new("/sys/fs/cgroup/cpuacct")
            .join(cpuacct.trim_start_matches('/'))
            .join("cpuacct.usage")
    };
    let before: u64 = read(&file)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", file.display()));
    let s =
        c.rt.container_stats(ContainerStatsRequest {
            container_id: a.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let after: u64 = read(&file).trim().parse().unwrap();
    let cpu = s.cpu.unwrap().usage_core_nano_seconds.unwrap().value;
    assert!(
        before <= cpu && cpu <= after,
        "{before} <= {cpu} <= {after}"
    );
    assert!(s.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert_eq!(s.attributes.unwrap().metadata.unwrap().name, "a");
    let all =
        c.rt.list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(all.len(), 2);
    let ps =
        c.rt.pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let linux = ps.linux.unwrap();
    assert_eq!(linux.containers.len(), 2);
    assert!(linux
        .cpu
        .is_some_and(|c| c.usage_core_nano_seconds.unwrap().value > 0));
    // Lists and filters.
    let list =
        c.rt.list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod.clone(),
                label_selector: HashMap::from([("c".into(), "b".into())]),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, b);
    assert_eq!(list[0].labels, HashMap::from([("c".into(), "b".into())]));
    // Exec and attach hand out the streaming server's URLs.
    let url =
        c.rt.exec(ExecRequest {
            container_id: a.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/exec/"),
        "{url}"
    );
    // Stop and remove a: its events come in order.
    c.rt.stop_container(StopContainerRequest {
        container_id: a.clone(),
        timeout: 1,
    })
    .await
    .unwrap();
    assert_eq!(c.state(&a).await, ContainerState::ContainerExited as i32);
    c.rt.remove_container(RemoveContainerRequest {
        container_id: a.clone(),
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.message())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        if ev.container_id == a {
            seen.push(ev.container_event_type);
        }
    }
    assert_eq!(
        seen,
        vec![
            ContainerEventType::ContainerCreatedEvent as i32,
            ContainerEventType::ContainerStartedEvent as i32,
            ContainerEventType::ContainerStoppedEvent as i32,
            ContainerEventType::ContainerDeletedEvent as i32,
        ]
    );
    let (k, _) = code(
        c.rt.container_status(ContainerStatusRequest {
            container_id: a.clone(),
            verbose: false,
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    // The sandbox goes with everything it held.
    c.rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    c.rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(c.pods().await.is_empty());
    assert!(!netns.exists(), "{} is left", netns.display());
    for cg in info["sandbox"]["cgroups"].as_array().unwrap() {
        let p = PathBuf::from(cg.as_str().unwrap());
        assert!(!p.exists(), "cgroup {} is left", p.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&pod), "a mount of the pod is left");
    let out = c.d.store.ok(&["ps", "-aq"]);
    assert!(out.trim().is_empty(), "containers left: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_cri_format_and_reopened() {
    let mut c = Cri::start().await;
    let pod = c.run_pod("logs").await;
    let dir = c.logs().join("logs");
    let id = c
        .create(
            &pod,
            "l",
            &[
                "sh",
                "-c",
                "echo one; echo err1 >&2; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two; sleep 1000",
            ],
        )
        .await;
    let log = dir.join("l/0.log");
    let st =
        c.rt.container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(PathBuf::from(&st.log_path), log);
    c.start_c(&id).await;
    assert!(
        eventually(10, || read(&log).contains("err1")).await,
        "{}",
        read(&log)
    );
    // CRI format: TIMESTAMP STREAM TAG CONTENT.
    let text = read(&log);
    let mut lines = text.lines().map(|l| l.splitn(4, ' ').collect::<Vec<_>>());
    let mut found = Vec::new();
    for f in &mut lines {
        assert_eq!(f.len(), 4, "{text}");
        assert!(f[0].ends_with('Z') && f[0].contains('T'), "{text}");
        found.push((f[1].to_string(), f[2].to_string(), f[3].to_string()));
    }
    assert!(
        found.contains(&("stdout".into(), "F".into(), "one".into())),
        "{text}"
    );
    assert!(
        found.contains(&("stderr".into(), "F".into(), "err1".into())),
        "{text}"
    );
    // Rotation as kubelet does it: rename, ReopenContainerLog, later output in the new file.
    let old = dir.join("l/0.log.20240101-000000");
    std::fs::rename(&log, &old).unwrap();
    c.rt.reopen_container_log(ReopenContainerLogRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    assert!(log.exists());
    c.out(&id, &["touch", "/tmp/go"]).await;
    assert!(
        eventually(10, || read(&log).contains(" stdout F two")).await,
        "{}",
        read(&log)
    );
    assert!(!read(&old).contains("two"));
    assert!(read(&old).contains("one"));
    // Hostile log paths are refused and make no container.
    for bad in ["../../escape.log", "/etc/evil.log", "a/../../x.log"] {
        let mut cfg = Cri::container("bad", &["true"]);
        cfg.log_path = bad.into();
        let (k, m) = code(c.create_with(&pod, "bad", cfg).await);
        assert_eq!(k, Code::InvalidArgument, "{bad}: {m}");
    }
    std::os::unix::fs::symlink("/tmp", dir.join("out")).unwrap();
    let mut cfg = Cri::container("bad", &["true"]);
    cfg.log_path = "out/x.log".into();
    let (k, m) = code(c.create_with(&pod, "bad", cfg).await);
    assert_eq!(k, Code::InvalidArgument, "{m}");
    let n =
        c.rt.list_containers(ListContainersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .containers
            .len();
    assert_eq!(n, 1);
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_cleanly() {
    let mut c = Cri::start().await;
    // No metadata.
    let mut cfg = c.sandbox("x");
    cfg.metadata = None;
    let (k, m) = code(
        c.rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(cfg),
            runtime_handler: String::new(),
        })
        .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(m.contains("metadata"), "{m}");
    // A systemd slice as cgroup parent.
    let mut cfg = c.sandbox("slice");
    cfg.linux = Some(LinuxPodSandboxConfig {
        cgroup_parent: "kubepods-besteffort.slice".into(),
        ..Default::default()
    });
    let (k, m) = code(
        c.rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(cfg),
            runtime_handler: String::new(),
        })
        .await,
    );
    assert_eq!(k, Code::InvalidArgument);
    assert!(m.contains("systemd"), "{m}");
    assert!(c.pods().await.is_empty());
    // The same name and attempt twice: AlreadyExists, one pod.
    let pod = c.run_pod("dup").await;
    let (k, m) = code(
        c.rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(c.sandbox("dup")),
            runtime_handler: String::new(),
        })
        .await,
    );
    assert_eq!(k, Code::AlreadyExists, "{m}");
    assert_eq!(c.pods().await.len(), 1);
    // A privileged container in a sandbox that is not.
    let mut cfg = Cri::container("p", &["true"]);
    cfg.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let (k, m) = code(c.create_with(&pod, "p", cfg).await);
    assert_eq!(k, Code::InvalidArgument, "{m}");
    // No image, an image not pulled, no metadata.
    let mut cfg = Cri::container("i", &["true"]);
    cfg.image = Some(ImageSpec {
        image: "nosuch:1".into(),
        ..Default::default()
    });
    let (k, m) = code(c.create_with(&pod, "i", cfg).await);
    assert_eq!(k, Code::NotFound, "{m}");
    let mut cfg = Cri::container("m", &["true"]);
    cfg.metadata = None;
    let (k, _) = code(c.create_with(&pod, "m", cfg).await);
    assert_eq!(k, Code::InvalidArgument);
    // A container for a removed sandbox.
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let (k, m) = code(
        c.create_with(&pod, "late", Cri::container("late", &["true"]))
            .await,
    );
    assert_eq!(k, Code::NotFound, "{m}");
    // Unknown objects.
    let (k, _) = code(
        c.rt.start_container(StartContainerRequest {
            container_id: "0123456789ab".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    let (k, _) = code(
        c.rt.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: "nosuchpod".into(),
            verbose: false,
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);
    assert!(c.pods().await.is_empty());
    let out = c.d.store.ok(&["ps", "-aq"]);
    assert!(out.trim().is_empty(), "containers left: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_reaches_the_process() {
    let mut c = Cri::start().await;
    let pod = c.run_pod("sec").await;
    let mut cfg = Cri::container("s", &["sleep", "1000"]);
    cfg.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1234 }),
            run_as_group: Some(Int64Value { value: 2345 }),
            supplemental_groups: vec![3456],
            readonly_rootfs: true,
            no_new_privs: true,
            capabilities: Some(Capability {
                drop_capabilities: vec!["ALL".into()],
                add_capabilities: vec!["NET_RAW".into()],
                ..Default::default()
            }),
            masked_paths: vec!["/etc/hostname".into()],
            seccomp: Some(SecurityProfile {
                profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        }),
    });
    let id = c.create_with(&pod, "s", cfg).await.unwrap();
    c.start_c(&id).await;
    let ids = c.out(&id, &["id"]).await;
    assert!(
        ids.contains("uid=1234") && ids.contains("gid=2345") && ids.contains("3456"),
        "{ids}"
    );
    let status = c.out(&id, &["cat", "/proc/self/status"]).await;
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    // CAP_NET_RAW is bit 13 only.
    assert_eq!(field("CapBnd:"), "0000000000002000", "{status}");
    let r = c.exec(&id, &["touch", "/x"], 10).await.unwrap();
    assert_ne!(r.exit_code, 0, "the rootfs is read-only");
    assert_eq!(c.out(&id, &["cat", "/etc/hostname"]).await, "", "masked");
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}

fn image_spec(name: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: name.into(),
        ..Default::default()
    })
}

/// PullImage from a registry that demands basic auth: refused as Unauthenticated without
/// credentials and with a wrong password, pulled with the AuthConfig kubelet passes; the
/// image is then known to ImageStatus and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_registry_credentials() {
    use barge_testutil::oci_image::{push_image, Image};
    let reg = tokio::task::spawn_blocking(|| {
        let reg = barge_testutil::registry::Registry::start_basic_auth("kube", "s3cret");
        push_image(&reg, "private/bb", "1", &Image::busybox());
        reg
    })
    .await
    .unwrap();
    let mut c = Cri::start().await;
    let name = format!("{}/private/bb:1", reg.addr);
    let pull = |auth: Option<AuthConfig>| PullImageRequest {
        image: image_spec(&name),
        auth,
        sandbox_config: None,
    };
    let (k, m) = code(c.img.pull_image(pull(None)).await);
    assert_eq!(k, Code::Unauthenticated, "{m}");
    let wrong = AuthConfig {
        username: "kube".into(),
        password: "nope".into(),
        ..Default::default()
    };
    let (k, m) = code(c.img.pull_image(pull(Some(wrong))).await);
    assert_eq!(k, Code::Unauthenticated, "{m}");
    let st = c
        .img
        .image_status(ImageStatusRequest {
            image: image_spec(&name),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none(), "a refused pull left an image");
    let good = AuthConfig {
        username: "kube".into(),
        password: "s3cret".into(),
        ..Default::default()
    };
    let r = c
        .img
        .pull_image(pull(Some(good)))
        .await
        .unwrap_or_else(|e| panic!("pull with credentials: {e:?}\n{}", c.d.log()))
        .into_inner();
    assert!(r.image_ref.starts_with("sha256:"), "{}", r.image_ref);
    let st = c
        .img
        .image_status(ImageStatusRequest {
            image: image_spec(&name),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image.unwrap().id, r.image_ref);
    let pod = c.run_pod("pulled").await;
    let mut config = Cri::container("priv", &["sleep", "300"]);
    config.image = image_spec(&name);
    let id = c.create_with(&pod, "pulled", config).await.unwrap();
    c.start_c(&id).await;
    assert_eq!(
        c.out(&id, &["echo", "from-private"]).await.trim(),
        "from-private"
    );
}

/// UpdateContainerResources on a running container: the new memory limit and CPU quota are
/// what the container's own cgroup says (read from inside), and ContainerStatus shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_container_resources_reaches_the_cgroup() {
    let mut c = Cri::start().await;
    let pod = c.run_pod("upd").await;
    let id = c.create(&pod, "upd", &["sleep", "300"]).await;
    c.start_c(&id).await;
    let limit = 96 * 1024 * 1024;
    c.rt.update_container_resources(UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(LinuxContainerResources {
            memory_limit_in_bytes: limit,
            cpu_period: 100_000,
            cpu_quota: 50_000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("UpdateContainerResources: {e:?}\n{}", c.d.log()));
    // The container's cgroup, from inside: /proc/self/cgroup names it under each hierarchy
    // (the cpu controller's directory is `cpu,cpuacct` or `cpu` depending on the mount).
    let find = |ctl: &str, file: &str| {
        format!(
            "p=$(grep -E ':([a-z_]+,)?{ctl}(,[a-z_]+)?:' /proc/self/cgroup | head -1 | cut -d: -f3); \
             for d in /sys/fs/cgroup/*{ctl}*$p /sys/fs/cgroup/*{ctl}*; do \
             [ -f \"$d/{file}\" ] && cat \"$d/{file}\" && exit 0; done; \
             ls /sys/fs/cgroup; cat /proc/self/cgroup; exit 1"
        )
    };
    let got = c
        .out(&id, &["sh", "-c", &find("memory", "memory.limit_in_bytes")])
        .await;
    assert_eq!(got.trim(), limit.to_string(), "memory limit");
    let got = c
        .out(&id, &["sh", "-c", &find("cpu", "cpu.cfs_quota_us")])
        .await;
    assert_eq!(got.trim(), "50000", "cpu quota");
    let st =
        c.rt.container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let lr = st
        .resources
        .and_then(|r| r.linux)
        .expect("status.resources.linux");
    assert_eq!(lr.memory_limit_in_bytes, limit);
    assert_eq!(lr.cpu_quota, 50_000);
    // A bad request changes nothing.
    let (k, m) = code(
        c.rt.update_container_resources(UpdateContainerResourcesRequest {
            container_id: "nosuch".into(),
            linux: Some(LinuxContainerResources::default()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(k, Code::NotFound, "{m}");
}

/// A sandbox's port mapping (hostPort) reaches a server in the pod from the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_port_reaches_the_pod() {
    let mut c = Cri::start().await;
    let port = barge_testutil::registry::free_port();
    let mut config = c.sandbox("web");
    config.port_mappings = vec![PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 8080,
        host_port: i32::from(port),
        host_ip: "127.0.0.1".into(),
    }];
    std::fs::create_dir_all(&config.log_directory).unwrap();
    let pod =
        c.rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}\n{}", c.d.log()))
        .into_inner()
        .pod_sandbox_id;
    let id = c
        .create(
            &pod,
            "web",
            &[
                "sh",
                "-c",
                "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 8080 -h /www",
            ],
        )
        .await;
    c.start_c(&id).await;
    let addr = format!("127.0.0.1:{port}");
    let mut body = String::new();
    for _ in 0..100 {
        let a = addr.clone();
        if let Ok(Ok(text)) = tokio::task::spawn_blocking(move || get_text(&a)).await {
            body = text;
            if body.contains("hello-from-the-pod") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        body.contains("hello-from-the-pod"),
        "got {body:?}\n{}",
        c.d.log()
    );
}

/// Kubernetes' shareProcessNamespace (pid POD) with hostIPC and hostNetwork (ipc and network
/// NODE): the containers see each other's processes under the pod's `barge-pause` (PID 1),
/// and use the host's IPC namespace, /dev/shm, network and hostname.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_pid_host_ipc_and_host_network() {
    let mut c = Cri::start().await;
    let mut config = c.sandbox("shared");
    let ns = NamespaceOption {
        pid: NamespaceMode::Pod as i32,
        ipc: NamespaceMode::Node as i32,
        network: NamespaceMode::Node as i32,
        ..Default::default()
    };
    config.linux = Some(LinuxPodSandboxConfig {
        security_context: Some(LinuxSandboxSecurityContext {
            namespace_options: Some(ns.clone()),
            ..Default::default()
        }),
        ..Default::default()
    });
    std::fs::create_dir_all(&config.log_directory).unwrap();
    let pod =
        c.rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}\n{}", c.d.log()))
        .into_inner()
        .pod_sandbox_id;
    let mut ids = Vec::new();
    for (name, secs) in [("a", "1001"), ("b", "1002")] {
        let mut cfg = Cri::container(name, &["sleep", secs]);
        cfg.linux = Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(ns.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let id =
            c.rt.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cfg),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e:?}\n{}", c.d.log()))
            .into_inner()
            .container_id;
        c.start_c(&id).await;
        ids.push(id);
    }
    // One PID namespace: each container sees the other's sleep, and PID 1 is the holder.
    let procs = c
        .out(
            &ids[0],
            &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
        )
        .await;
    assert!(
        procs.contains("sleep 1001") && procs.contains("sleep 1002"),
        "{procs}"
    );
    let init = c.out(&ids[1], &["cat", "/proc/1/cmdline"]).await;
    assert!(init.contains("barge-pause"), "PID 1 is {init:?}");
    assert_eq!(
        c.out(&ids[0], &["readlink", "/proc/self/ns/pid"]).await,
        c.out(&ids[1], &["readlink", "/proc/self/ns/pid"]).await
    );
    let host_ns = |n: &str| {
        std::fs::read_link(format!("/proc/self/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_ne!(
        c.out(&ids[0], &["readlink", "/proc/self/ns/pid"])
            .await
            .trim(),
        host_ns("pid")
    );
    // The host's IPC, network and UTS namespaces, and the host's /dev/shm.
    for n in ["ipc", "net", "uts"] {
        assert_eq!(
            c.out(&ids[0], &["readlink", &format!("/proc/self/ns/{n}")])
                .await
                .trim(),
            host_ns(n),
            "{n}"
        );
    }
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(c.out(&ids[1], &["hostname"]).await.trim(), host_name.trim());
    let marker = format!("barge-cri-test-{}", std::process::id());
    std::fs::write(format!("/dev/shm/{marker}"), "host-shm").unwrap();
    let seen = c
        .exec(&ids[0], &["cat", &format!("/dev/shm/{marker}")], 10)
        .await;
    let _ = std::fs::remove_file(format!("/dev/shm/{marker}"));
    assert_eq!(String::from_utf8_lossy(&seen.unwrap().stdout), "host-shm");
    // The status says what was asked.
    let st =
        c.rt.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let opts = st.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(opts.pid, NamespaceMode::Pod as i32);
    assert_eq!(opts.ipc, NamespaceMode::Node as i32);
    assert_eq!(opts.network, NamespaceMode::Node as i32);
    // Stopping the sandbox ends the holder: nothing is left in the pod's PID namespace.
    let pause_ns = c.out(&ids[0], &["readlink", "/proc/self/ns/pid"]).await;
    c.rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let still = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_link(e.path().join("ns/pid"))
                .map(|l| l.to_string_lossy() == pause_ns.trim())
                .unwrap_or(false)
        })
        // A killed holder may stay a zombie until the host's init reaps it: dead, not left.
        .filter(|e| {
            let st = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            !st.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .count();
    assert_eq!(still, 0, "processes left in the pod's PID namespace");
}

/// A plain HTTP/1.0 GET of `/index.html` (the whole answer, headers included).
fn get_text(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
