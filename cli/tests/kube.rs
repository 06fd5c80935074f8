//! `barge kube play|down|generate` end to end with real containers: a Deployment of three
//! replicas with a ConfigMap mounted as files, a Secret as env and as files, and a claim as
//! a named volume, checked from inside the containers; `kube down` removing it all; generate
//! -> play round trips; bad or unsupported YAML refused with nothing left behind, and a play
//! failing midway undone.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use barge_testutil::engine::BargeEnv;
use barge_testutil::{stderr, stdout};
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// Removes the test's pods however the test ends (BargeEnv only knows containers).
struct Pods<'a>(&'a BargeEnv);

impl Drop for Pods<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(&["pod", "ls", "-q", "--no-trunc"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.0.run(&["pod", "rm", "-f", id]);
        }
    }
}

/// `barge exec C sh -c CMD`, trimmed stdout (must succeed).
fn exec(b: &BargeEnv, c: &str, cmd: &str) -> String {
    b.ok(&["exec", c, "sh", "-c", cmd]).trim().to_string()
}

/// Write `yaml` to a file in the test's directory; its path.
fn yaml_file(b: &BargeEnv, name: &str, yaml: &str) -> String {
    let p: PathBuf = b.path().join(name);
    std::fs::write(&p, yaml).unwrap();
    p.to_string_lossy().into_owned()
}

fn pod_names(b: &BargeEnv) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(&b.ok(&["pod", "ls", "--format", "json"]))
        .unwrap_or(Value::Array(vec![]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_string())
        .collect()
}

fn container_names(b: &BargeEnv) -> BTreeSet<String> {
    b.ok(&["ps", "-a", "--format", "json"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["Names"].as_str().unwrap().to_string()
        })
        .collect()
}

fn volumes(b: &BargeEnv) -> BTreeSet<String> {
    b.ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

/// Entries of `<root>/pods` (each pod's directory, with its ConfigMap and Secret files).
fn pod_dirs(b: &BargeEnv) -> Vec<String> {
    std::fs::read_dir(b.root().join("pods"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Play must fail with exit 125 saying every one of `needles`, and leave no pod, container
/// or volume.
fn refused(b: &BargeEnv, yaml: &str, needles: &[&str]) {
    let f = yaml_file(b, "bad.yaml", yaml);
    let before = volumes(b);
    let o = b.run(&["kube", "play", &f]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    for n in needles {
        assert!(stderr(&o).contains(n), "want {n:?} in: {}", stderr(&o));
    }
    assert_eq!(pod_names(b), BTreeSet::new(), "{yaml}");
    assert_eq!(container_names(b), BTreeSet::new(), "{yaml}");
    assert_eq!(pod_dirs(b), Vec::<String>::new(), "{yaml}");
    assert_eq!(volumes(b), before, "{yaml}");
}

const DEPLOYMENT: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  app.conf: |
    greeting=hello
  mode: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
type: Opaque
data:
  password: aHVudGVyMg==
stringData:
  user: admin
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: bb
        command: ["sleep", "300"]
        env:
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: web-secret, key: password}
        - name: MODE
          valueFrom:
            configMapKeyRef: {name: web-config, key: mode}
        - name: WHO
          valueFrom:
            fieldRef: {fieldPath: metadata.name}
        - name: GREETING
          value: "mode is $(MODE)"
        envFrom:
        - secretRef: {name: web-secret}
          prefix: S_
        resources:
          limits: {memory: 64Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: data, mountPath: /data}
        - {name: creds, mountPath: /run/creds}
      volumes:
      - name: config
        configMap: {name: web-config}
      - name: data
        persistentVolumeClaim: {claimName: web-data}
      - name: creds
        secret: {secretName: web-secret}
"#;

#[test]
fn deployment_with_config_map_secret_and_claim_then_down() {
    let b = env();
    let _pods = Pods(&b);
    let f = yaml_file(&b, "web.yaml", DEPLOYMENT);
    let out = b.ok(&["kube", "play", &f]);
    assert_eq!(out.matches("Pod:").count(), 3, "{out}");
    assert!(out.contains("Volumes:\nweb-data\n"), "{out}");

    let pods: BTreeSet<String> = (0..3).map(|n| format!("web-pod-{n}")).collect();
    assert_eq!(pod_names(&b), pods);
    let ctrs: BTreeSet<String> = (0..3).map(|n| format!("web-pod-{n}-app")).collect();
    assert_eq!(container_names(&b), ctrs);
    let v: Value = serde_json::from_str(&b.ok(&["pod", "inspect", "web-pod-1"])).unwrap();
    assert_eq!(v[0]["State"], "Running", "{v}");
    assert_eq!(v[0]["Labels"]["app"], "web", "{v}");

    for n in 0..3 {
        let c = format!("web-pod-{n}-app");
        // The ConfigMap as read-only files, the Secret as env and as 0400 files.
        assert_eq!(exec(&b, &c, "cat /etc/app/app.conf"), "greeting=hello");
        assert_eq!(exec(&b, &c, "cat /etc/app/mode"), "fast");
        assert_eq!(exec(&b, &c, "echo $PASSWORD"), "hunter2");
        assert_eq!(exec(&b, &c, "echo $S_user $S_password"), "admin hunter2");
        assert_eq!(exec(&b, &c, "echo $MODE"), "fast");
        assert_eq!(exec(&b, &c, "echo $GREETING"), "mode is fast");
        assert_eq!(exec(&b, &c, "echo $WHO"), format!("web-pod-{n}"));
        assert_eq!(exec(&b, &c, "hostname"), format!("web-pod-{n}"));
        assert_eq!(exec(&b, &c, "cat /run/creds/password"), "hunter2");
        assert_eq!(exec(&b, &c, "stat -c %a /run/creds/user"), "400");
        assert_eq!(exec(&b, &c, "stat -c %a /etc/app/mode"), "644");
        let o = b.run(&["exec", &c, "touch", "/etc/app/new"]);
        assert!(!o.status.success(), "the ConfigMap volume is read-only");
        assert_eq!(
            b.inspect(&c, "{{.HostConfig.Memory}}"),
            (64 << 20).to_string()
        );
    }
    // The claim is one named volume: what one replica writes, another reads.
    exec(&b, "web-pod-0-app", "echo from-0 > /data/shared");
    assert_eq!(exec(&b, "web-pod-2-app", "cat /data/shared"), "from-0");
    assert!(volumes(&b).contains("web-data"));

    // A second play of the same YAML: the names are taken.
    let o = b.run(&["kube", "play", &f]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("pod web-pod-0 exists already"),
        "{}",
        stderr(&o)
    );
    assert_eq!(pod_names(&b), pods);

    // down: pods, containers and their files go; the claim's volume stays (podman's
    // habit) with its data, until down --force.
    let out = b.ok(&["kube", "down", &f]);
    assert!(
        out.contains("web-pod-0") && out.contains("web-pod-2"),
        "{out}"
    );
    assert_eq!(pod_names(&b), BTreeSet::new());
    assert_eq!(container_names(&b), BTreeSet::new());
    assert_eq!(pod_dirs(&b), Vec::<String>::new());
    assert!(volumes(&b).contains("web-data"));
    let data = b.root().join("volumes/web-data/_data/shared");
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "from-0\n");
    let out = b.ok(&["kube", "down", "--force", &f]);
    assert!(out.contains("Volumes removed:\nweb-data"), "{out}");
    assert!(!volumes(&b).contains("web-data"));
}

#[test]
fn replace_plays_again_and_down_leaves_other_pods_alone() {
    let b = env();
    let _pods = Pods(&b);
    // A pod of the same name made by hand is not play's: down leaves it.
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {tier: one}
spec:
  restartPolicy: Never
  initContainers:
  - name: prep
    image: bb
    command: ["sh", "-c", "echo prepared > /work/ready"]
    volumeMounts: [{name: scratch, mountPath: /work}]
  containers:
  - name: main
    image: bb
    command: ["sleep", "300"]
    workingDir: /work
    volumeMounts: [{name: scratch, mountPath: /work}]
  volumes:
  - name: scratch
    emptyDir: {}
"#;
    let f = yaml_file(&b, "solo.yaml", yaml);
    b.ok(&["kube", "play", &f]);
    // The init container ran first, in the pod's shared emptyDir.
    assert_eq!(exec(&b, "solo-main", "cat ready"), "prepared");
    assert_eq!(exec(&b, "solo-main", "pwd"), "/work");
    exec(&b, "solo-main", "echo old > /work/marker");
    // --replace: the old pod goes, a new one comes (a fresh emptyDir).
    b.ok(&["kube", "play", "--replace", &f]);
    assert_eq!(pod_names(&b), BTreeSet::from(["solo".to_string()]));
    let o = b.run(&["exec", "solo-main", "cat", "/work/marker"]);
    assert!(!o.status.success(), "the emptyDir is new");
    assert_eq!(exec(&b, "solo-main", "cat ready"), "prepared");

    b.ok(&["kube", "down", &f]);
    b.ok(&["pod", "create", "--name", "solo"]);
    let out = b.ok(&["kube", "down", &f]);
    assert!(!out.contains("solo"), "{out}");
    assert_eq!(pod_names(&b), BTreeSet::from(["solo".to_string()]));
}

#[test]
fn generate_then_play_round_trips() {
    let b = env();
    let _pods = Pods(&b);
    b.ok(&["pod", "create", "--name", "rt", "--label", "tier=db"]);
    b.ok(&[
        "create",
        "--pod",
        "rt",
        "--name",
        "rt-main",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--memory",
        "64m",
        "--user",
        "1000:1000",
        "bb",
        "sh",
        "-c",
        "echo $FOO > /tmp/out; sleep 300",
    ]);
    b.ok(&["pod", "start", "rt"]);
    let first = b.ok(&["kube", "generate", "rt"]);
    assert!(first.contains("kind: Pod"), "{first}");
    assert!(first.contains("name: main"), "{first}");
    assert!(!first.contains("io.barge.kube"), "{first}");
    let f = yaml_file(&b, "rt.yaml", &first);
    b.ok(&["pod", "rm", "-f", "rt"]);

    b.ok(&["kube", "play", &f]);
    let v: Value = serde_json::from_str(&b.ok(&["pod", "inspect", "rt"])).unwrap();
    assert_eq!(v[0]["Labels"]["tier"], "db", "{v}");
    assert_eq!(v[0]["State"], "Running", "{v}");
    assert_eq!(exec(&b, "rt-main", "echo $FOO"), "bar");
    assert_eq!(exec(&b, "rt-main", "cat /tmp/out"), "bar");
    assert_eq!(exec(&b, "rt-main", "pwd"), "/tmp");
    assert_eq!(exec(&b, "rt-main", "id -u; id -g"), "1000\n1000");
    assert_eq!(
        b.inspect("rt-main", "{{.HostConfig.Memory}}"),
        (64 << 20).to_string()
    );
    // The played pod generates the same YAML.
    assert_eq!(b.ok(&["kube", "generate", "rt"]), first);
    assert!(stderr(&b.run(&["kube", "generate", "nope"])).contains("No such pod: nope"));
}

#[test]
fn bad_or_unsupported_yaml_is_refused_and_leaves_nothing() {
    let b = env();
    let _pods = Pods(&b);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: bb, command: [sleep, '300']}]\n";
    refused(
        &b,
        &format!("{pod}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\n"),
        &["document #2 (Service web): kind Service is not supported"],
    );
    refused(&b, "a: [b\n", &["document #1: not valid YAML"]);
    refused(&b, "", &["no Kubernetes object"]);
    refused(
        &b,
        &format!(
            "{pod}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: two}}\nspec:\n  containers:\n  - name: c\n    image: bb\n    lifecycle: {{preStop: {{exec: {{command: [x]}}}}}}\n"
        ),
        &["document #2 (Pod two): spec.containers[0].lifecycle: not supported"],
    );
    refused(
        &b,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: bb\n    env: [{name: X, valueFrom: {configMapKeyRef: {name: gone, key: k}}}]\n",
        &["spec.containers[0].env[0].valueFrom: ConfigMap gone is not in the YAML"],
    );
    refused(
        &b,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: bb}]\n  volumes: [{name: n, nfs: {server: x, path: /}}]\n",
        &["spec.volumes[0].nfs: not supported"],
    );
    // A failure midway (the second pod's init container fails at start): the first pod,
    // the claim's new volume and everything else this play made are removed.
    refused(
        &b,
        &format!(
            "{pod}---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: fresh}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  initContainers: [{{name: i, image: bb, command: [sh, -c, 'exit 3']}}]\n  containers:\n  - {{name: c, image: bb, command: [sleep, '300'], volumeMounts: [{{name: d, mountPath: /d}}]}}\n  volumes: [{{name: d, persistentVolumeClaim: {{claimName: fresh}}}}]\n"
        ),
        &["init container bad-i exited with code 3"],
    );
    assert!(!volumes(&b).contains("fresh"));
    // A bad pod-level value in a later document (a sysctl no pod namespace has) is found
    // before anything is made: no pod of this play was ever created (the event journal has
    // no pod event for the first document's pod).
    refused(
        &b,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: early}\nspec:\n  containers: [{name: c, image: bb, command: [sleep, '300']}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n  securityContext: {sysctls: [{name: vm.swappiness, value: '10'}]}\n  containers: [{name: c, image: bb}]\n",
        &["document #2 (Pod late)", "vm.swappiness"],
    );
    let journal = std::fs::read_to_string(b.root().join("events/journal.jsonl")).unwrap();
    assert!(
        !journal
            .lines()
            .any(|l| l.contains("\"Type\":\"pod\"") && l.contains("\"name\":\"early\"")),
        "a pod of the refused play was made"
    );
}

#[test]
fn host_port_publishes_and_yaml_from_stdin() {
    use std::io::Write;
    use std::process::Stdio;

    use barge_testutil::net::{free_port, http_get, wait_http, HTTPD};

    let b = env();
    let _pods = Pods(&b);
    let port = free_port();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: webport
spec:
  containers:
  - name: httpd
    image: bb
    command: ["sh", "-c", {HTTPD:?}]
    env: [{{name: BODY, value: from-kube}}]
    ports:
    - {{containerPort: 80, hostPort: {port}, protocol: TCP}}
"#
    );
    let pipe = |args: &[&str]| {
        let mut child = b
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    pipe(&["kube", "play", "-"]);
    assert!(wait_http(port).contains("from-kube"));
    let generated = b.ok(&["kube", "generate", "webport"]);
    assert!(
        generated.contains(&format!("hostPort: {port}")),
        "{generated}"
    );
    let out = pipe(&["kube", "down", "-"]);
    assert!(out.contains("webport"), "{out}");
    assert_eq!(http_get(port), None);
    assert_eq!(pod_names(&b), BTreeSet::new());
}

/// `shareProcessNamespace`, `hostIPC` and `hostNetwork` as Kubernetes means them: one PID
/// namespace for the pod (PID 1 its `barge-pause`), the host's IPC namespace, network and
/// hostname; `kube down` leaves no process behind.
#[test]
fn shared_pid_host_ipc_and_host_network() {
    let b = env();
    let _pods = Pods(&b);
    let f = yaml_file(
        &b,
        "ns.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sharing}
spec:
  shareProcessNamespace: true
  containers:
  - {name: a, image: bb, command: ["sleep", "1001"]}
  - {name: b, image: bb, command: ["sleep", "1002"]}
---
apiVersion: v1
kind: Pod
metadata: {name: onhost}
spec:
  hostNetwork: true
  hostIPC: true
  containers:
  - {name: h, image: bb, command: ["sleep", "1003"]}
"#,
    );
    b.ok(&["kube", "play", &f]);
    let procs = exec(&b, "sharing-a", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
    assert!(
        procs.contains("sleep 1001") && procs.contains("sleep 1002"),
        "{procs}"
    );
    assert!(exec(&b, "sharing-b", "cat /proc/1/cmdline").contains("barge-pause"));
    let pid_ns = exec(&b, "sharing-a", "readlink /proc/self/ns/pid");
    assert_eq!(pid_ns, exec(&b, "sharing-b", "readlink /proc/self/ns/pid"));
    let host = |n: &str| {
        std::fs::read_link(format!("/proc/self/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_ne!(pid_ns, host("pid"));
    // The other pod: its own PID namespace, the host's IPC, network and hostname.
    for n in ["ipc", "net", "uts"] {
        assert_eq!(
            exec(&b, "onhost-h", &format!("readlink /proc/self/ns/{n}")),
            host(n),
            "{n}"
        );
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(exec(&b, "onhost-h", "hostname"), hostname.trim());
    assert_ne!(exec(&b, "onhost-h", "readlink /proc/self/ns/pid"), pid_ns);
    b.ok(&["kube", "down", &f]);
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_link(e.path().join("ns/pid"))
                .map(|l| l.to_string_lossy() == pid_ns)
                .unwrap_or(false)
        })
        .map(|e| std::fs::read_to_string(e.path().join("status")).unwrap_or_default())
        // A killed holder may stay a zombie until the host's init reaps it: dead, not left.
        .filter(|st| {
            !st.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .collect();
    assert!(
        left.is_empty(),
        "processes left in the pod's PID namespace: {left:?}"
    );
    assert_eq!(pod_names(&b), BTreeSet::new());
}
