//! The CRI side of `bench/cri_pod.sh`: drives one or more CRI endpoints (barge daemon, the
//! containerd CRI plugin) with the same tonic client.
//!
//! cri_bench cycle RUNS IMAGE CGROUP_PARENT LOGDIR ENDPOINT...
//!     RUNS times, endpoints alternating (ABAB): RunPodSandbox + CreateContainer +
//!     StartContainer of `true`, then StopPodSandbox + RemovePodSandbox. Prints one line per
//!     endpoint: `ENDPOINT mean_ms stdev_ms min_ms` (the whole cycle).
//! cri_bench pods COUNT CGROUP_PARENT LOGDIR ENDPOINT
//!     RunPodSandbox COUNT idle sandboxes; prints their ids, one per line.
//! cri_bench rmpods ENDPOINT ID...
//!     StopPodSandbox + RemovePodSandbox of each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use barge_cri::proto::runtime_service_client::RuntimeServiceClient;
use barge_cri::proto::*;
use tonic::transport::{Channel, Endpoint};

type Client = RuntimeServiceClient<Channel>;

async fn connect(path: &str) -> Client {
    let path = path.trim_start_matches("unix://").to_string();
    let channel = Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(p).await?,
                ))
            }
        }))
        .await
        .expect("connect to the CRI socket");
    RuntimeServiceClient::new(channel)
}

fn sandbox(name: &str, cgroup_parent: &str, logdir: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: format!("{logdir}/{name}"),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{cgroup_parent}/{name}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_pod(c: &mut Client, cfg: &PodSandboxConfig) -> String {
    std::fs::create_dir_all(&cfg.log_directory).expect("log directory");
    c.run_pod_sandbox(RunPodSandboxRequest {
        config: Some(cfg.clone()),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

async fn remove_pod(c: &mut Client, id: &str) {
    c.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .expect("StopPodSandbox");
    c.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// One cycle; the time of each step (ms): RunPodSandbox, CreateContainer, StartContainer,
/// StopPodSandbox + RemovePodSandbox.
async fn cycle(
    c: &mut Client,
    name: &str,
    image: &str,
    cgroup_parent: &str,
    logdir: &str,
) -> [f64; 4] {
    let mut steps = [0.0; 4];
    let mut t = Instant::now();
    let mut lap = |i: usize, steps: &mut [f64; 4]| {
        steps[i] = t.elapsed().as_secs_f64() * 1e3;
        t = Instant::now();
    };
    let cfg = sandbox(name, cgroup_parent, logdir);
    let pod = run_pod(c, &cfg).await;
    lap(0, &mut steps);
    let id = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "true".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                command: vec!["true".into()],
                log_path: "true.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(cfg),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    lap(1, &mut steps);
    c.start_container(StartContainerRequest { container_id: id })
        .await
        .expect("StartContainer");
    lap(2, &mut steps);
    remove_pod(c, &pod).await;
    lap(3, &mut steps);
    steps
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    (mean, var.sqrt(), min)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid = std::process::id();
    match args.first().map(String::as_str) {
        Some("cycle") => {
            let runs: usize = args[1].parse().expect("RUNS");
            let (image, cg, logdir) = (&args[2], &args[3], &args[4]);
            let eps = &args[5..];
            let mut clients = Vec::new();
            for e in eps {
                clients.push(connect(e).await);
            }
            // One warm-up cycle each, untimed.
            for (i, c) in clients.iter_mut().enumerate() {
                let _ = cycle(c, &format!("warm-{pid}-{i}"), image, cg, logdir).await;
            }
            let mut times = vec![Vec::new(); eps.len()];
            let mut steps = vec![[0.0f64; 4]; eps.len()];
            for r in 0..runs {
                for (i, c) in clients.iter_mut().enumerate() {
                    let t = Instant::now();
                    let s = cycle(c, &format!("b-{pid}-{r}-{i}"), image, cg, logdir).await;
                    times[i].push(t.elapsed().as_secs_f64() * 1e3);
                    for (sum, v) in steps[i].iter_mut().zip(s) {
                        *sum += v / runs as f64;
                    }
                }
            }
            for ((e, t), s) in eps.iter().zip(&times).zip(&steps) {
                let (m, sd, min) = stats(t);
                println!("{e} {m:.1} {sd:.1} {min:.1}");
                eprintln!(
                    "cri_bench: {e}: mean ms per step: run sandbox {:.1}, create {:.1}, start {:.1}, stop + remove {:.1}",
                    s[0], s[1], s[2], s[3]
                );
            }
        }
        Some("pods") => {
            let count: usize = args[1].parse().expect("COUNT");
            let mut c = connect(&args[4]).await;
            for i in 0..count {
                let id = run_pod(
                    &mut c,
                    &sandbox(&format!("idle-{pid}-{i}"), &args[2], &args[3]),
                )
                .await;
                println!("{id}");
            }
        }
        Some("rmpods") => {
            let mut c = connect(&args[1]).await;
            for id in &args[2..] {
                remove_pod(&mut c, id).await;
            }
        }
        _ => {
            eprintln!("usage: cri_bench cycle|pods|rmpods ... (see the source)");
            std::process::exit(2);
        }
    }
}
