//! The operations on a network: ADD, DEL, CHECK, STATUS and GC over a config list's plugin
//! chain, and VERSION on a single plugin.
//!
//! This layer does not cache results: the caller keeps the [`CniResult`] of ADD and hands it back
//! for DEL and CHECK (and, before GC, deletes its own cached attachments that are no longer
//! valid).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::command::Command;
use crate::conf::{is_valid_name, NetworkConfigList};
use crate::error::{Error, Result};
use crate::exec::{find_plugin, invoke, Call};
use crate::result::{CniResult, VersionInfo};
use crate::version::{self, SpecVersion};

/// The per-container part of an ADD, DEL or CHECK.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeConf {
    /// The container ID (`CNI_CONTAINERID`); same alphabet as network names.
    pub container_id: String,
    /// The container's network namespace (`CNI_NETNS`); may be empty for DEL.
    pub netns: PathBuf,
    /// The interface name inside the container (`CNI_IFNAME`).
    pub ifname: String,
    /// Extra arguments, passed as `CNI_ARGS=K=V;K=V`.
    pub args: Vec<(String, String)>,
    /// Capability arguments, e.g. `"portMappings": [...]`; each plugin gets, as `runtimeConfig`,
    /// the ones its `capabilities` object enables.
    pub capability_args: Map<String, Value>,
}

impl RuntimeConf {
    /// A runtime config without args or capability args.
    pub fn new(
        container_id: impl Into<String>,
        netns: impl Into<PathBuf>,
        ifname: impl Into<String>,
    ) -> Self {
        RuntimeConf {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            ..Default::default()
        }
    }
}

/// An attachment that is still in use, for GC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// The container ID.
    pub container_id: String,
    /// The interface name in the container.
    pub ifname: String,
}

/// A CNI client: where plugins live and how long each may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cni {
    /// Directories searched for plugin binaries, in order (also passed as `CNI_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
    /// The time limit of each single plugin invocation.
    pub timeout: Duration,
}

/// Whether `ifname` is acceptable as a Linux interface name.
pub fn is_valid_ifname(ifname: &str) -> bool {
    !ifname.is_empty()
        && ifname.len() <= 15
        && ifname != "."
        && ifname != ".."
        && !ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
}

/// The JSON a plugin reads on stdin: its own object from the list plus the list's `name` and
/// `cniVersion`, `prevResult` when given, and as `runtimeConfig` the capability args the plugin
/// enables in its `capabilities` object (none: no `runtimeConfig` is added).
pub fn plugin_config(
    list: &NetworkConfigList,
    plugin: &Map<String, Value>,
    prev_result: Option<&Value>,
    capability_args: Option<&Map<String, Value>>,
) -> Value {
    let mut conf = plugin.clone();
    conf.insert("name".to_owned(), Value::String(list.name.clone()));
    conf.insert(
        "cniVersion".to_owned(),
        Value::String(list.cni_version.clone()),
    );
    if let Some(prev) = prev_result {
        conf.insert("prevResult".to_owned(), prev.clone());
    }
    if let (Some(args), Some(Value::Object(caps))) = (capability_args, plugin.get("capabilities")) {
        let runtime: Map<String, Value> = caps
            .iter()
            .filter(|(_, enabled)| enabled.as_bool() == Some(true))
            .filter_map(|(key, _)| args.get(key).map(|v| (key.clone(), v.clone())))
            .collect();
        if !runtime.is_empty() {
            conf.insert("runtimeConfig".to_owned(), Value::Object(runtime));
        }
    }
    Value::Object(conf)
}

impl Cni {
    /// A client searching `plugin_dirs` and allowing each plugin `timeout`.
    pub fn new(plugin_dirs: Vec<PathBuf>, timeout: Duration) -> Self {
        Cni {
            plugin_dirs,
            timeout,
        }
    }

    /// Attaches a container: runs the plugins in order, each getting the previous one's result
    /// as `prevResult`. The last plugin's result is returned.
    ///
    /// On error the attachment may be half made; the caller should run [`Cni::del`].
    pub fn add(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<CniResult> {
        self.add_after(list, rt, None)
    }

    /// [`Cni::add`] continuing a chain another component began: the first plugin gets `prev`
    /// (that component's result) as `prevResult` (a runtime that wires the interface itself
    /// and leaves only, say, `portmap` to a plugin).
    pub fn add_after(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: Option<CniResult>,
    ) -> Result<CniResult> {
        let env = self.container_env(list, Command::Add, rt)?;
        let mut last: Option<CniResult> = prev;
        for plugin in &list.plugins {
            let prev = last.as_ref().map(|r| &r.raw);
            let stdin = plugin_config(list, plugin, prev, Some(&rt.capability_args));
            let (call, out) = self.run(list, plugin, Command::Add, &env, &stdin)?;
            if out.iter().all(u8::is_ascii_whitespace) {
                return Err(call.bad_output("returned no result"));
            }
            let result = CniResult::from_slice(&out).map_err(|e| call.bad_output(e.0))?;
            last = Some(result);
        }
        last.ok_or_else(|| Error::Config {
            origin: format!("network {:?}", list.name),
            msg: "no plugins".to_owned(),
        })
    }

    /// Detaches a container: runs the plugins in reverse order. From spec 0.4.0 on, `prev` (the
    /// cached ADD result) is passed as `prevResult`. Every plugin runs even if one fails; the
    /// first error is returned.
    pub fn del(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: Option<&CniResult>,
    ) -> Result<()> {
        let env = self.container_env(list, Command::Del, rt)?;
        let prev = prev
            .filter(|_| version::at_least(&list.cni_version, SpecVersion::V0_4_0))
            .map(|r| &r.raw);
        let mut first_error = None;
        for plugin in list.plugins.iter().rev() {
            let stdin = plugin_config(list, plugin, prev, Some(&rt.capability_args));
            if let Err(e) = self.run(list, plugin, Command::Del, &env, &stdin) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Verifies an attachment against its cached ADD result, plugin by plugin, stopping at the
    /// first failure. Does nothing before spec 0.4.0 or with `disableCheck`.
    pub fn check(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: &CniResult,
    ) -> Result<()> {
        if !list.check_enabled() {
            return Ok(());
        }
        let env = self.container_env(list, Command::Check, rt)?;
        for plugin in &list.plugins {
            let stdin = plugin_config(list, plugin, Some(&prev.raw), Some(&rt.capability_args));
            self.run(list, plugin, Command::Check, &env, &stdin)?;
        }
        Ok(())
    }

    /// Asks every plugin whether it is ready (spec 1.1.0; earlier lists are always ready),
    /// stopping at the first that is not. Codes 50 and 51 mean "not available".
    pub fn status(&self, list: &NetworkConfigList) -> Result<()> {
        if !list.status_enabled() {
            return Ok(());
        }
        let env = self.base_env(list, Command::Status)?;
        for plugin in &list.plugins {
            let stdin = plugin_config(list, plugin, None, None);
            self.run(list, plugin, Command::Status, &env, &stdin)?;
        }
        Ok(())
    }

    /// Lets every plugin release resources of attachments not in `valid` (spec 1.1.0 without
    /// `disableGC`; otherwise nothing happens). All plugins run; the first error is returned.
    ///
    /// The list goes in `cni.dev/valid-attachments` and, as libcni does for plugins written to an
    /// early draft of the spec, also in `cni.dev/attachments`.
    pub fn gc(&self, list: &NetworkConfigList, valid: &[Attachment]) -> Result<()> {
        if !list.gc_enabled() {
            return Ok(());
        }
        let env = self.base_env(list, Command::Gc)?;
        let attachments: Vec<Value> = valid
            .iter()
            .map(|a| json!({"containerID": a.container_id, "ifname": a.ifname}))
            .collect();
        let mut first_error = None;
        for plugin in &list.plugins {
            let mut stdin = plugin_config(list, plugin, None, None);
            if let Value::Object(conf) = &mut stdin {
                for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
                    conf.insert(key.to_owned(), Value::Array(attachments.clone()));
                }
            }
            if let Err(e) = self.run(list, plugin, Command::Gc, &env, &stdin) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Asks a plugin which spec versions it supports. A plugin that prints nothing predates the
    /// VERSION command and speaks 0.1.0 only.
    pub fn version(&self, plugin_type: &str) -> Result<VersionInfo> {
        let path = find_plugin(&self.plugin_dirs, plugin_type)?;
        let call = Call {
            network: None,
            plugin: plugin_type,
            command: Command::Version,
        };
        let env = vec![("CNI_COMMAND".to_owned(), "VERSION".to_owned())];
        let stdin = br#"{"cniVersion":"1.0.0"}"#;
        let out = invoke(&call, &path, &env, stdin, self.timeout)?;
        if out.iter().all(u8::is_ascii_whitespace) {
            return Ok(VersionInfo {
                cni_version: "0.1.0".to_owned(),
                supported_versions: vec!["0.1.0".to_owned()],
            });
        }
        VersionInfo::from_slice(&out).map_err(|e| call.bad_output(e.0))
    }

    /// Runs one plugin of `list`; returns the call (for error messages) and its stdout.
    fn run<'a>(
        &self,
        list: &'a NetworkConfigList,
        plugin: &'a Map<String, Value>,
        command: Command,
        env: &[(String, String)],
        stdin: &Value,
    ) -> Result<(Call<'a>, Vec<u8>)> {
        let plugin_type =
            plugin
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Config {
                    origin: format!("network {:?}", list.name),
                    msg: "a plugin has no string \"type\"".to_owned(),
                })?;
        let call = Call {
            network: Some(&list.name),
            plugin: plugin_type,
            command,
        };
        let path =
            find_plugin(&self.plugin_dirs, plugin_type).map_err(|e| e.in_network(&list.name))?;
        let stdin = serde_json::to_vec(stdin).map_err(|e| Error::Config {
            origin: format!("network {:?}", list.name),
            msg: format!("cannot serialize the config for plugin {plugin_type}: {e}"),
        })?;
        let out = invoke(&call, &path, env, &stdin, self.timeout)?;
        Ok((call, out))
    }

    /// `CNI_COMMAND` and `CNI_PATH`.
    fn base_env(
        &self,
        list: &NetworkConfigList,
        command: Command,
    ) -> Result<Vec<(String, String)>> {
        let mut dirs = Vec::with_capacity(self.plugin_dirs.len());
        for dir in &self.plugin_dirs {
            match dir.to_str() {
                Some(d) if !d.contains(':') => dirs.push(d),
                _ => {
                    return Err(Error::Config {
                        origin: format!("network {:?}", list.name),
                        msg: format!(
                            "plugin directory {} cannot go into CNI_PATH (it must be UTF-8 without ':')",
                            dir.display()
                        ),
                    })
                }
            }
        }
        Ok(vec![
            ("CNI_COMMAND".to_owned(), command.as_str().to_owned()),
            ("CNI_PATH".to_owned(), dirs.join(":")),
        ])
    }

    /// The full environment of ADD, DEL and CHECK, after validating `rt`.
    fn container_env(
        &self,
        list: &NetworkConfigList,
        command: Command,
        rt: &RuntimeConf,
    ) -> Result<Vec<(String, String)>> {
        let bad = |msg: String| Error::Config {
            origin: format!("network {:?} ({command})", list.name),
            msg,
        };
        if !is_valid_name(&rt.container_id) {
            return Err(bad(format!(
                "invalid container ID {:?}: it must start with a letter or digit and contain only \
                 letters, digits, '_', '.' and '-'",
                rt.container_id
            )));
        }
        if !is_valid_ifname(&rt.ifname) {
            return Err(bad(format!(
                "invalid interface name {:?}: 1 to 15 characters, no '/', ':' or whitespace",
                rt.ifname
            )));
        }
        let netns = rt.netns.to_str().ok_or_else(|| {
            bad(format!(
                "network namespace path {} is not UTF-8",
                rt.netns.display()
            ))
        })?;
        if netns.is_empty() && command != Command::Del {
            return Err(bad("no network namespace path given".to_owned()));
        }
        let mut args = Vec::with_capacity(rt.args.len());
        for (k, v) in &rt.args {
            if k.is_empty() || k.contains(['=', ';']) || v.contains(';') {
                return Err(bad(format!(
                    "CNI argument {k:?}={v:?} cannot be passed in CNI_ARGS (no ';' anywhere, no '=' in the key)"
                )));
            }
            args.push(format!("{k}={v}"));
        }
        let mut env = self.base_env(list, command)?;
        env.push(("CNI_CONTAINERID".to_owned(), rt.container_id.clone()));
        env.push(("CNI_NETNS".to_owned(), netns.to_owned()));
        env.push(("CNI_IFNAME".to_owned(), rt.ifname.clone()));
        if !args.is_empty() {
            env.push(("CNI_ARGS".to_owned(), args.join(";")));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests;
