//! What the edge e2e tests share: a fleet (etcd + hub + CLI), agent flags for quick
//! reconnects, workload YAML, waits on `fleet get pods`.
#![allow(dead_code)]

use std::time::Duration;

use barge_edge_e2e::util::{free_port, poll};
use barge_edge_e2e::{Agent, Etcd, FaultProxy, Fleet, Hub, HubOptions, PodRow};

/// Hub flags for tests: short heartbeats so a dead link is noticed in seconds.
pub const HUB_ARGS: &[&str] = &["--heartbeat-secs", "1", "--node-grace-secs", "6"];

/// `barge edge run` flags for tests: reconnect backoff base 100 ms, cap 2 s (the defaults,
/// 1 s and 60 s, are for 10 000 devices, not for a test waiting on one); no MQTT broker
/// (the device tests give theirs).
pub const AGENT_ARGS: &[&str] = &[
    "--backoff-base-ms",
    "100",
    "--backoff-max-ms",
    "2000",
    "--mqtt",
    "none",
];

/// etcd, one hub and the CLI on its admin.conf.
pub struct Cloud {
    pub fleet: Fleet,
    pub hub: Hub,
    pub etcd: Etcd,
}

impl Cloud {
    pub fn start() -> Cloud {
        Cloud::with(hub_options())
    }

    /// A cloud whose hub edges reach only through a [`FaultProxy`]: the hub advertises the
    /// proxy's address, so an agent reconnecting from its list of hubs goes through it too.
    pub fn behind_proxy() -> (Cloud, FaultProxy) {
        Cloud::behind_proxy_with(hub_options())
    }

    /// [`Cloud::behind_proxy`] with these hub options.
    pub fn behind_proxy_with(opts: HubOptions) -> (Cloud, FaultProxy) {
        let listen: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let proxy = FaultProxy::start(listen).expect("start the fault proxy");
        let cloud = Cloud::with(HubOptions {
            listen: Some(listen),
            advertise: Some(proxy.addr().to_string()),
            ..opts
        });
        (cloud, proxy)
    }

    pub fn with(opts: HubOptions) -> Cloud {
        let etcd = Etcd::start();
        let hub = Hub::start(&etcd, opts);
        let conf = hub.admin_conf();
        assert!(
            conf.token.as_deref().is_some_and(|t| !t.is_empty()),
            "the first hub's admin.conf has no token: {conf:?}"
        );
        let fleet = Fleet::new(&hub.admin_conf_path());
        Cloud { fleet, hub, etcd }
    }

    /// A new device joined through `proxy` and running.
    pub fn device_via(&self, name: &str, proxy: &FaultProxy) -> Agent {
        let url = format!("https://{}", proxy.addr());
        self.device(name, &[], Some(&url))
    }

    /// A new device joined with a fresh token (through `hub_url`, default this hub) and
    /// running.
    pub fn device(&self, name: &str, labels: &[(&str, &str)], hub_url: Option<&str>) -> Agent {
        let mut a = Agent::new(name);
        let token = self.fleet.token(None);
        a.join(hub_url.unwrap_or(&self.hub.edge_url()), &token, labels);
        a.run(AGENT_ARGS);
        a
    }

    /// Wait until the node is Ready in `fleet get nodes`.
    pub fn wait_ready(&self, agent: &mut Agent) {
        let ok = poll(Duration::from_secs(60), || {
            (self.fleet.node_ready(&agent.name).as_deref() == Some("True")).then_some(())
        });
        assert!(
            ok.is_some(),
            "node {} not Ready after 60 s\nnodes: {:?}\nagent log:\n{}\nhub log:\n{}",
            agent.name,
            self.fleet.nodes(),
            agent.log(),
            self.hub.log()
        );
    }
}

pub fn hub_options() -> HubOptions {
    HubOptions {
        args: HUB_ARGS.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A Deployment of busybox pods that print `started-$VERSION` and sleep; `placement` is
/// the pod template's `nodeSelector` (`k: v` pairs) or, with key `nodeName`, its node.
pub fn deployment(name: &str, replicas: u32, placement: &[(&str, &str)], version: u32) -> String {
    let place = match placement {
        [("nodeName", n)] => format!("      nodeName: {n}\n"),
        pairs => {
            let sel: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("      nodeSelector: {{{}}}\n", sel.join(", "))
        }
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{place}      containers:
      - name: main
        image: bb
        imagePullPolicy: Never
        command: [sh, -c, 'echo started-$VERSION; exec sleep 100000']
        env:
        - {{name: VERSION, value: \"{version}\"}}
"
    )
}

/// A bare Pod on `node`.
pub fn pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  containers:
  - name: main
    image: bb
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-{name}; exec sleep 100000']
"
    )
}

/// Wait until `fleet get pods` satisfies `want`; the rows then. Panics with `what` and the
/// last rows after `timeout`.
pub fn wait_pods(
    fleet: &Fleet,
    timeout: Duration,
    what: &str,
    mut want: impl FnMut(&[PodRow]) -> bool,
) -> Vec<PodRow> {
    let mut last = Vec::new();
    let got = poll(timeout, || {
        last = fleet.pods();
        want(&last).then(|| last.clone())
    });
    got.unwrap_or_else(|| panic!("{what}: not after {timeout:?}; fleet get pods: {last:#?}"))
}

/// The pods named with `prefix`.
pub fn named<'a>(rows: &'a [PodRow], prefix: &str) -> Vec<&'a PodRow> {
    rows.iter().filter(|r| r.name.starts_with(prefix)).collect()
}

/// Assert that the running container `name` on `agent` started once, as `version`: its log
/// says `started-<version>` exactly once and its restart count is 0.
pub fn started_once(agent: &Agent, name: &str, version: u32) {
    let id = agent
        .running_containers()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("{name} is not running: {:#?}", agent.ps()));
    let o = agent.barge(&["logs", &id]);
    let log = String::from_utf8_lossy(&o.stdout).into_owned();
    let starts = log.lines().filter(|l| l.starts_with("started-")).count();
    assert_eq!(starts, 1, "{name} started {starts} times: {log:?}");
    assert!(
        log.contains(&format!("started-{version}")),
        "{name}: {log:?}"
    );
    assert_eq!(agent.inspect(&id, "{{.RestartCount}}"), "0", "{name}");
}

/// `$VERSION` as the container whose name contains `needle` on `agent` sees it.
pub fn version_in(agent: &Agent, needle: &str) -> Option<String> {
    let (_, id) = agent
        .running_containers()
        .into_iter()
        .find(|(n, _)| n.contains(needle))?;
    let o = agent.barge(&["exec", &id, "sh", "-c", "echo $VERSION"]);
    if !o.status.success() {
        eprintln!(
            "barge exec {id} on {}: {}",
            agent.name,
            String::from_utf8_lossy(&o.stderr)
        );
        return None;
    }
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}
