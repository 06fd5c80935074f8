//! Tests of the operations, with fake plugins that record what they were given.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::testutil::{fake_plugin, process_gone, read_pid};

/// A plugin directory of recording fake plugins, and the log they write to.
struct Fixture {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    log: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let log = dir.path().join("log");
        fs::create_dir(&bin).unwrap();
        fs::create_dir(&log).unwrap();
        Fixture {
            _dir: dir,
            bin,
            log,
        }
    }

    /// A plugin that records its stdin, its CNI_* environment and the call order, prints
    /// `output` and exits with `status`.
    fn plugin(&self, name: &str, output: &str, status: i32) {
        self.script(name, &format!("cat <<'EOF'\n{output}\nEOF\nexit {status}"));
    }

    /// A recording plugin whose remaining behaviour is `body`.
    fn script(&self, name: &str, body: &str) {
        let log = self.log.display();
        fake_plugin(
            &self.bin,
            name,
            &format!(
                "cat > \"{log}/{name}.$CNI_COMMAND.stdin\"\n\
                 env | grep '^CNI_' | sort > \"{log}/{name}.$CNI_COMMAND.env\"\n\
                 echo \"{name} $CNI_COMMAND\" >> \"{log}/calls\"\n\
                 {body}"
            ),
        );
    }

    fn cni(&self) -> Cni {
        Cni::new(
            vec![PathBuf::from("/nonexistent/cni"), self.bin.clone()],
            Duration::from_secs(20),
        )
    }

    fn stdin(&self, name: &str, command: &str) -> Value {
        let path = self.log.join(format!("{name}.{command}.stdin"));
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&data).unwrap()
    }

    fn env(&self, name: &str, command: &str) -> BTreeMap<String, String> {
        let text = fs::read_to_string(self.log.join(format!("{name}.{command}.env"))).unwrap();
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn calls(&self) -> Vec<String> {
        match fs::read_to_string(self.log.join("calls")) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn list(version: &str, plugins: Value) -> NetworkConfigList {
    let doc = json!({"cniVersion": version, "name": "testnet", "plugins": plugins});
    NetworkConfigList::from_value(doc, "test").unwrap()
}

fn rt() -> RuntimeConf {
    RuntimeConf::new("c0ffee", "/run/netns/test", "eth0")
}

fn result_json(ip: &str, tag: &str) -> String {
    json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/test"}],
        "ips": [{"interface": 0, "address": ip, "gateway": "10.0.0.1"}],
        "tag": tag,
    })
    .to_string()
}

#[test]
fn add_chains_prev_results_and_returns_the_last_result() {
    let f = Fixture::new();
    let first = result_json("10.0.0.2/24", "first");
    let second = result_json("10.0.0.3/24", "second");
    f.plugin("first", &first, 0);
    f.plugin("second", &second, 0);
    let l = list(
        "1.0.0",
        json!([{"type": "first", "opt": 1}, {"type": "second", "name": "ignored"}]),
    );
    let mut rt = rt();
    rt.args = vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAME".into(), "web".into()),
    ];

    let r = f.cni().add(&l, &rt).unwrap();
    assert_eq!(r.raw["tag"], "second");
    assert_eq!(r.ipv4()[0].addr.to_string(), "10.0.0.3");
    assert_eq!(f.calls(), ["first ADD", "second ADD"]);

    let s1 = f.stdin("first", "ADD");
    assert_eq!(
        s1,
        json!({"type": "first", "opt": 1, "name": "testnet", "cniVersion": "1.0.0"})
    );
    let s2 = f.stdin("second", "ADD");
    assert_eq!(
        s2["prevResult"],
        serde_json::from_str::<Value>(&first).unwrap()
    );
    assert_eq!(
        s2["name"], "testnet",
        "the list name overrides the plugin's"
    );
    assert_eq!(s2["cniVersion"], "1.0.0");

    let env = f.env("second", "ADD");
    assert_eq!(env["CNI_COMMAND"], "ADD");
    assert_eq!(env["CNI_CONTAINERID"], "c0ffee");
    assert_eq!(env["CNI_NETNS"], "/run/netns/test");
    assert_eq!(env["CNI_IFNAME"], "eth0");
    assert_eq!(env["CNI_ARGS"], "IgnoreUnknown=1;K8S_POD_NAME=web");
    assert_eq!(
        env["CNI_PATH"],
        format!("/nonexistent/cni:{}", f.bin.display())
    );
}

#[test]
fn cni_args_is_omitted_when_empty() {
    let f = Fixture::new();
    f.plugin("only", &result_json("10.0.0.2/24", "x"), 0);
    f.cni()
        .add(&list("1.0.0", json!([{"type": "only"}])), &rt())
        .unwrap();
    let env = f.env("only", "ADD");
    assert!(!env.contains_key("CNI_ARGS"), "{env:?}");
}

#[test]
fn runtime_config_holds_only_the_capabilities_a_plugin_declares() {
    let f = Fixture::new();
    let out = result_json("10.0.0.2/24", "x");
    f.plugin("bridge", &out, 0);
    f.plugin("portmap", &out, 0);
    let l = list(
        "1.0.0",
        json!([
            {"type": "bridge"},
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false, "ips": true}}
        ]),
    );
    let mut rt = rt();
    let ports = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    rt.capability_args
        .insert("portMappings".into(), ports.clone());
    rt.capability_args
        .insert("bandwidth".into(), json!({"ingressRate": 1}));
    rt.capability_args
        .insert("mac".into(), json!("02:00:00:00:00:09"));
    f.cni().add(&l, &rt).unwrap();
    assert!(f.stdin("bridge", "ADD").get("runtimeConfig").is_none());
    assert_eq!(
        f.stdin("portmap", "ADD")["runtimeConfig"],
        json!({"portMappings": ports})
    );
}

#[test]
fn add_stops_at_a_failing_plugin_and_surfaces_its_error_object() {
    let f = Fixture::new();
    f.plugin(
        "first",
        r#"{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"bridge name too long"}"#,
        1,
    );
    f.plugin("second", &result_json("10.0.0.3/24", "x"), 0);
    let l = list("1.0.0", json!([{"type": "first"}, {"type": "second"}]));
    let e = f.cni().add(&l, &rt()).unwrap_err();
    assert_eq!(e.code(), Some(7));
    assert_eq!(
        e.to_string(),
        "network \"testnet\": plugin first (ADD): invalid network config: bridge name too long (CNI error code 7)"
    );
    assert_eq!(f.calls(), ["first ADD"]);
}

#[test]
fn add_requires_a_result() {
    let f = Fixture::new();
    f.plugin("silent", "", 0);
    let e = f
        .cni()
        .add(&list("1.0.0", json!([{"type": "silent"}])), &rt())
        .unwrap_err();
    assert!(matches!(e, Error::BadOutput { .. }));
    assert_eq!(
        e.to_string(),
        "network \"testnet\": plugin silent (ADD): returned no result"
    );
    f.plugin("garbage", "this is not json", 0);
    let e = f
        .cni()
        .add(&list("1.0.0", json!([{"type": "garbage"}])), &rt())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("network \"testnet\": plugin garbage (ADD): result is not valid JSON"),
        "{e}"
    );
}

#[test]
fn add_validates_the_runtime_config() {
    let f = Fixture::new();
    f.plugin("only", &result_json("10.0.0.2/24", "x"), 0);
    let l = list("1.0.0", json!([{"type": "only"}]));
    let cases = [
        (
            RuntimeConf::new("bad id", "/run/netns/x", "eth0"),
            "invalid container ID",
        ),
        (
            RuntimeConf::new("c1", "/run/netns/x", "a/b"),
            "invalid interface name",
        ),
        (
            RuntimeConf::new("c1", "/run/netns/x", "sixteen-chars-xx"),
            "invalid interface name",
        ),
        (
            RuntimeConf::new("c1", "", "eth0"),
            "no network namespace path",
        ),
        (
            RuntimeConf {
                args: vec![("A".into(), "1;B=2".into())],
                ..RuntimeConf::new("c1", "/run/netns/x", "eth0")
            },
            "cannot be passed in CNI_ARGS",
        ),
    ];
    for (rt, want) in cases {
        let e = f.cni().add(&l, &rt).unwrap_err().to_string();
        assert!(e.starts_with("network \"testnet\" (ADD): "), "{e}");
        assert!(e.contains(want), "{e}");
    }
    assert!(f.calls().is_empty());
}

#[test]
fn del_runs_in_reverse_with_prev_result_and_keeps_going() {
    let f = Fixture::new();
    f.plugin("first", "", 0);
    f.plugin("second", "second broke", 2);
    f.plugin("third", "", 0);
    let l = list(
        "1.0.0",
        json!([{"type": "first"}, {"type": "second"}, {"type": "third"}]),
    );
    let prev = CniResult::from_slice(result_json("10.0.0.2/24", "cached").as_bytes()).unwrap();
    let mut rt = rt();
    rt.netns = PathBuf::new();
    let e = f.cni().del(&l, &rt, Some(&prev)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "network \"testnet\": plugin second (DEL): exited with status 2: second broke"
    );
    assert_eq!(f.calls(), ["third DEL", "second DEL", "first DEL"]);
    for name in ["first", "second", "third"] {
        assert_eq!(f.stdin(name, "DEL")["prevResult"], prev.raw, "{name}");
    }
    let env = f.env("first", "DEL");
    assert_eq!(env["CNI_COMMAND"], "DEL");
    assert_eq!(env.get("CNI_NETNS").map(String::as_str), Some(""));
}

#[test]
fn del_of_a_0_3_list_passes_no_prev_result() {
    let f = Fixture::new();
    f.plugin("old", "", 0);
    let l = list("0.3.1", json!([{"type": "old"}]));
    let prev = CniResult::from_slice(result_json("10.0.0.2/24", "cached").as_bytes()).unwrap();
    f.cni().del(&l, &rt(), Some(&prev)).unwrap();
    let stdin = f.stdin("old", "DEL");
    assert!(stdin.get("prevResult").is_none(), "{stdin}");
    assert_eq!(stdin["cniVersion"], "0.3.1");
}

#[test]
fn check_runs_only_where_the_spec_and_config_allow() {
    let f = Fixture::new();
    f.plugin("p", "", 0);
    let prev = CniResult::from_slice(result_json("10.0.0.2/24", "cached").as_bytes()).unwrap();
    f.cni()
        .check(&list("0.3.1", json!([{"type": "p"}])), &rt(), &prev)
        .unwrap();
    let mut disabled = list("1.0.0", json!([{"type": "p"}]));
    disabled.disable_check = true;
    f.cni().check(&disabled, &rt(), &prev).unwrap();
    assert!(f.calls().is_empty());

    f.cni()
        .check(&list("1.0.0", json!([{"type": "p"}])), &rt(), &prev)
        .unwrap();
    assert_eq!(f.calls(), ["p CHECK"]);
    assert_eq!(f.stdin("p", "CHECK")["prevResult"], prev.raw);

    f.plugin("p", r#"{"code":999,"msg":"eth0 has the wrong address"}"#, 1);
    let e = f
        .cni()
        .check(&list("0.4.0", json!([{"type": "p"}])), &rt(), &prev)
        .unwrap_err();
    assert_eq!(e.code(), Some(999));
    assert!(
        e.to_string()
            .contains("(CHECK): eth0 has the wrong address"),
        "{e}"
    );
}

#[test]
fn status_and_gc_only_for_1_1_lists() {
    let f = Fixture::new();
    f.plugin("a", "", 0);
    f.plugin("b", "", 0);
    let plugins = json!([{"type": "a"}, {"type": "b"}]);
    let valid = [
        Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        },
        Attachment {
            container_id: "c2".into(),
            ifname: "eth1".into(),
        },
    ];
    let cni = f.cni();
    cni.status(&list("1.0.0", plugins.clone())).unwrap();
    cni.gc(&list("1.0.0", plugins.clone()), &valid).unwrap();
    let mut no_gc = list("1.1.0", plugins.clone());
    no_gc.disable_gc = true;
    cni.gc(&no_gc, &valid).unwrap();
    assert!(f.calls().is_empty());

    let l = list("1.1.0", plugins);
    cni.status(&l).unwrap();
    cni.gc(&l, &valid).unwrap();
    assert_eq!(f.calls(), ["a STATUS", "b STATUS", "a GC", "b GC"]);

    let env = f.env("a", "STATUS");
    assert_eq!(env["CNI_COMMAND"], "STATUS");
    assert!(env.contains_key("CNI_PATH"));
    for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
        assert!(!env.contains_key(var), "{var} in {env:?}");
    }
    assert_eq!(
        f.stdin("a", "STATUS"),
        json!({"type": "a", "name": "testnet", "cniVersion": "1.1.0"})
    );
    let gc = f.stdin("b", "GC");
    let want = json!([
        {"containerID": "c1", "ifname": "eth0"},
        {"containerID": "c2", "ifname": "eth1"}
    ]);
    assert_eq!(gc["cni.dev/valid-attachments"], want);
    assert_eq!(gc["cni.dev/attachments"], want);
    assert_eq!(f.env("b", "GC")["CNI_COMMAND"], "GC");
    assert!(!f.env("b", "GC").contains_key("CNI_CONTAINERID"));
}

#[test]
fn status_reports_an_unavailable_plugin_and_gc_keeps_going() {
    let f = Fixture::new();
    f.plugin(
        "a",
        r#"{"cniVersion":"1.1.0","code":50,"msg":"not ready"}"#,
        1,
    );
    f.plugin("b", "", 0);
    let l = list("1.1.0", json!([{"type": "a"}, {"type": "b"}]));
    let e = f.cni().status(&l).unwrap_err();
    assert_eq!(e.code(), Some(50));
    assert_eq!(f.calls(), ["a STATUS"]);
    f.plugin("a", "gc failed", 1);
    let e = f.cni().gc(&l, &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("plugin a (GC): exited with status 1: gc failed"),
        "{e}"
    );
    assert_eq!(f.calls(), ["a STATUS", "a GC", "b GC"]);
    assert_eq!(f.stdin("b", "GC")["cni.dev/valid-attachments"], json!([]));
}

#[test]
fn version_parses_the_answer() {
    let f = Fixture::new();
    f.plugin(
        "v",
        r#"{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}"#,
        0,
    );
    let v = f.cni().version("v").unwrap();
    assert_eq!(v.cni_version, "1.0.0");
    assert_eq!(v.supported_versions, ["0.3.1", "0.4.0", "1.0.0"]);
    assert_eq!(f.stdin("v", "VERSION"), json!({"cniVersion": "1.0.0"}));
    let env = f.env("v", "VERSION");
    assert_eq!(env.keys().collect::<Vec<_>>(), ["CNI_COMMAND"]);

    f.plugin("ancient", "", 0);
    assert_eq!(
        f.cni().version("ancient").unwrap().supported_versions,
        ["0.1.0"]
    );
    f.plugin("weird", "[1,2,3]", 0);
    let e = f.cni().version("weird").unwrap_err().to_string();
    assert!(
        e.starts_with("plugin weird (VERSION): VERSION answer is not valid"),
        "{e}"
    );
}

#[test]
fn a_missing_plugin_names_the_network_and_the_dirs() {
    let f = Fixture::new();
    let e = f
        .cni()
        .add(&list("1.0.0", json!([{"type": "nope"}])), &rt())
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "network \"testnet\": CNI plugin \"nope\" not found in /nonexistent/cni, {}",
            f.bin.display()
        )
    );
    let e = f.cni().version("nope").unwrap_err().to_string();
    assert!(e.starts_with("CNI plugin \"nope\" not found in"), "{e}");
}

#[test]
fn a_hanging_plugin_times_out_and_its_child_dies() {
    let f = Fixture::new();
    let pidfile = f.log.join("child.pid");
    f.script(
        "hang",
        &format!("sleep 30 & echo $! > \"{}\"; wait", pidfile.display()),
    );
    let mut cni = f.cni();
    cni.timeout = Duration::from_millis(300);
    let start = Instant::now();
    let e = cni
        .add(&list("1.0.0", json!([{"type": "hang"}])), &rt())
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        e.to_string(),
        "network \"testnet\": plugin hang (ADD): did not answer within 300ms (killed)"
    );
    let child = read_pid(&pidfile);
    assert!(process_gone(child), "child {child} survived");
}

const LOOPBACK: &str = "/usr/lib/cni/loopback";

fn system_cni() -> Option<Cni> {
    if !Path::new(LOOPBACK).exists() {
        println!("skipped: {LOOPBACK} is not installed");
        return None;
    }
    Some(Cni::new(
        vec![PathBuf::from("/usr/lib/cni")],
        Duration::from_secs(20),
    ))
}

#[test]
fn real_loopback_answers_version() {
    let Some(cni) = system_cni() else { return };
    let v = cni.version("loopback").unwrap();
    assert_eq!(v.cni_version, "1.0.0");
    assert!(v.supports("1.0.0") && v.supports("0.4.0"), "{v:?}");
}

#[test]
fn real_loopback_rejects_a_version_it_does_not_speak() {
    let Some(cni) = system_cni() else { return };
    let v = cni.version("loopback").unwrap();
    if v.supports("1.1.0") {
        println!("skipped: this loopback speaks 1.1.0");
        return;
    }
    let l = list("1.1.0", json!([{"type": "loopback"}]));
    let e = cni
        .add(&l, &RuntimeConf::new("c1", "/nonexistent/netns", "lo"))
        .unwrap_err();
    assert_eq!(e.code(), Some(1), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("network \"testnet\": plugin loopback (ADD): incompatible CNI versions"),
        "{text}"
    );
}
