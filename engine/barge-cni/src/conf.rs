//! Network configuration lists: parsing and validating `.conflist` (and legacy single-plugin
//! `.conf`) documents, loading them from a directory, and writing them back.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::version::{self, SpecVersion, SUPPORTED_VERSIONS};

/// A validated network configuration list: a named network and the chain of plugins that
/// attach containers to it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    /// The network name (`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`).
    pub name: String,
    /// The spec version used to talk to the plugins: the document's `cniVersion`, or the
    /// highest supported entry of its `cniVersions`.
    pub cni_version: String,
    /// `disableCheck`: never run CHECK on this network.
    pub disable_check: bool,
    /// `disableGC`: never run GC on this network.
    pub disable_gc: bool,
    /// The plugin objects, in chain order; each has a valid string `type`.
    pub plugins: Vec<Map<String, Value>>,
    /// The whole document as read, including keys this crate does not know (barge keeps its own
    /// metadata under `"barge"`).
    pub raw: Value,
    /// The file it was loaded from, if any.
    pub path: Option<PathBuf>,
}

/// Whether `name` is acceptable as a network name (and as a container ID):
/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `plugin_type` is safe to use as a binary name inside a plugin directory.
pub fn is_valid_plugin_type(plugin_type: &str) -> bool {
    !plugin_type.is_empty()
        && plugin_type != "."
        && !plugin_type.contains('/')
        && !plugin_type.contains("..")
        && !plugin_type.contains('\0')
}

/// What kind of document a file holds, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    List,
    Single,
}

fn file_kind(path: &Path) -> Option<FileKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("conflist") => Some(FileKind::List),
        Some("conf") | Some("json") => Some(FileKind::Single),
        _ => None,
    }
}

impl NetworkConfigList {
    /// Parses and validates a `.conflist` document. `origin` (a path or a description) prefixes
    /// every error message.
    pub fn from_slice(data: &[u8], origin: &str) -> Result<Self> {
        let doc: Value = serde_json::from_slice(data).map_err(|e| Error::Config {
            origin: origin.to_owned(),
            msg: format!("not valid JSON: {e}"),
        })?;
        Self::from_value(doc, origin)
    }

    /// Validates an already parsed `.conflist` document.
    pub fn from_value(doc: Value, origin: &str) -> Result<Self> {
        let err = |msg: String| Error::Config {
            origin: origin.to_owned(),
            msg,
        };
        let obj = doc
            .as_object()
            .ok_or_else(|| err("a network config list must be a JSON object".to_owned()))?;

        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(err("\"name\" must be a string".to_owned())),
            None => return Err(err("\"name\" is missing".to_owned())),
        };
        if !is_valid_name(&name) {
            return Err(err(format!(
                "invalid network name {name:?}: it must start with a letter or digit and contain \
                 only letters, digits, '_', '.' and '-'"
            )));
        }
        let in_net = |msg: String| err(format!("network {name:?}: {msg}"));

        let cni_version = pick_version(obj).map_err(in_net)?;
        let disable_check = flag(obj, "disableCheck").map_err(in_net)?;
        let disable_gc = flag(obj, "disableGC").map_err(in_net)?;

        let plugins = match obj.get("plugins") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(in_net("\"plugins\" must be a list".to_owned())),
            None => return Err(in_net("\"plugins\" is missing".to_owned())),
        };
        if plugins.is_empty() {
            return Err(in_net("\"plugins\" is empty".to_owned()));
        }
        let plugins = plugins
            .iter()
            .enumerate()
            .map(|(i, p)| validate_plugin(i, p).map_err(in_net))
            .collect::<Result<Vec<_>>>()?;

        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check,
            disable_gc,
            plugins,
            raw: doc,
            path: None,
        })
    }

    /// Parses a legacy single-plugin `.conf` document and turns it into a list of one plugin:
    /// its `name` and `cniVersion` move up to the list.
    pub fn from_conf_slice(data: &[u8], origin: &str) -> Result<Self> {
        let doc: Value = serde_json::from_slice(data).map_err(|e| Error::Config {
            origin: origin.to_owned(),
            msg: format!("not valid JSON: {e}"),
        })?;
        let Value::Object(mut plugin) = doc else {
            return Err(Error::Config {
                origin: origin.to_owned(),
                msg: "a network config must be a JSON object".to_owned(),
            });
        };
        let mut list = Map::new();
        for key in ["name", "cniVersion"] {
            if let Some(v) = plugin.remove(key) {
                list.insert(key.to_owned(), v);
            }
        }
        list.insert(
            "plugins".to_owned(),
            Value::Array(vec![Value::Object(plugin)]),
        );
        Self::from_value(Value::Object(list), origin)
    }

    /// Loads one file: `.conflist` as a list, `.conf` and `.json` as a single-plugin config.
    pub fn load_file(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let kind = file_kind(path).ok_or_else(|| Error::Config {
            origin: origin.clone(),
            msg: "unknown network config file type (expected .conflist, .conf or .json)".to_owned(),
        })?;
        let data = fs::read(path).map_err(|source| Error::Io {
            what: "cannot read network config".to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let mut list = match kind {
            FileKind::List => Self::from_slice(&data, &origin)?,
            FileKind::Single => Self::from_conf_slice(&data, &origin)?,
        };
        list.path = Some(path.to_owned());
        Ok(list)
    }

    /// Loads every `.conflist`, `.conf` and `.json` file of `dir`, in file-name order.
    ///
    /// A missing directory holds no networks. Files that fail to load are reported in the second
    /// vector and skipped; so is a file whose network name an earlier file already declared (the
    /// first one wins, as in libcni).
    pub fn load_dir(dir: &Path) -> (Vec<Self>, Vec<Error>) {
        let (lists, problems) = scan_dir(dir);
        (lists, problems.into_iter().map(|p| p.error).collect())
    }

    /// Finds the network called `name` in `dir` (see [`NetworkConfigList::load_dir`]).
    ///
    /// When no file declares it but some file failed to load, that failure is returned: the
    /// network may be the one in the broken file.
    pub fn find(dir: &Path, name: &str) -> Result<Option<Self>> {
        let (lists, problems) = scan_dir(dir);
        if let Some(list) = lists.into_iter().find(|l| l.name == name) {
            return Ok(Some(list));
        }
        match problems.into_iter().find(|p| !p.shadowed) {
            Some(p) => Err(p.error),
            None => Ok(None),
        }
    }

    /// The document to store: [`raw`](Self::raw) with the typed fields written over it.
    ///
    /// `cniVersion` is written as [`cni_version`](Self::cni_version) unless the document's
    /// `cniVersions` already lists it (then the document's own version keys are kept).
    pub fn to_value(&self) -> Value {
        let mut doc = match &self.raw {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        doc.insert("name".to_owned(), Value::String(self.name.clone()));
        let listed = doc
            .get("cniVersions")
            .and_then(Value::as_array)
            .is_some_and(|vs| vs.iter().any(|v| v.as_str() == Some(&self.cni_version)));
        if !listed {
            doc.insert(
                "cniVersion".to_owned(),
                Value::String(self.cni_version.clone()),
            );
        }
        for (key, value) in [
            ("disableCheck", self.disable_check),
            ("disableGC", self.disable_gc),
        ] {
            if value || doc.contains_key(key) {
                doc.insert(key.to_owned(), Value::Bool(value));
            }
        }
        doc.insert(
            "plugins".to_owned(),
            Value::Array(self.plugins.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(doc)
    }

    /// [`to_value`](Self::to_value) as indented JSON.
    pub fn to_vec_pretty(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(&self.to_value()).map_err(|e| Error::Config {
            origin: format!("network {:?}", self.name),
            msg: format!("cannot serialize: {e}"),
        })
    }

    /// The plugin types, in chain order.
    pub fn plugin_types(&self) -> impl Iterator<Item = &str> {
        self.plugins
            .iter()
            .filter_map(|p| p.get("type").and_then(Value::as_str))
    }

    /// Whether CHECK applies: spec 0.4.0 or later and not `disableCheck`.
    pub fn check_enabled(&self) -> bool {
        !self.disable_check && version::at_least(&self.cni_version, SpecVersion::V0_4_0)
    }

    /// Whether STATUS applies: spec 1.1.0 or later.
    pub fn status_enabled(&self) -> bool {
        version::at_least(&self.cni_version, SpecVersion::V1_1_0)
    }

    /// Whether GC applies: spec 1.1.0 or later and not `disableGC`.
    pub fn gc_enabled(&self) -> bool {
        !self.disable_gc && version::at_least(&self.cni_version, SpecVersion::V1_1_0)
    }
}

/// A file of a config directory that was not loaded.
struct Problem {
    error: Error,
    /// The file is fine but its network name was taken by an earlier file.
    shadowed: bool,
}

/// Loads the config files of `dir` in file-name order (see [`NetworkConfigList::load_dir`]).
fn scan_dir(dir: &Path) -> (Vec<NetworkConfigList>, Vec<Problem>) {
    let mut lists: Vec<NetworkConfigList> = Vec::new();
    let mut problems = Vec::new();
    let broken = |error| Problem {
        error,
        shadowed: false,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (lists, problems),
        Err(source) => {
            problems.push(broken(Error::Io {
                what: "cannot list network config directory".to_owned(),
                path: dir.to_owned(),
                source,
            }));
            return (lists, problems);
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if file_kind(&path).is_some() && path.is_file() {
                    files.push(path);
                }
            }
            Err(source) => problems.push(broken(Error::Io {
                what: "cannot list network config directory".to_owned(),
                path: dir.to_owned(),
                source,
            })),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in files {
        match NetworkConfigList::load_file(&path) {
            Ok(list) => {
                if let Some(first) = lists.iter().find(|l| l.name == list.name) {
                    let first = first
                        .path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    problems.push(Problem {
                        error: Error::Config {
                            origin: path.display().to_string(),
                            msg: format!(
                                "network {:?} is already defined in {first}; this file is ignored",
                                list.name
                            ),
                        },
                        shadowed: true,
                    });
                } else {
                    lists.push(list);
                }
            }
            Err(e) => problems.push(broken(e)),
        }
    }
    (lists, problems)
}

/// Chooses the version to speak: the highest supported entry of `cniVersions`, else `cniVersion`.
fn pick_version(obj: &Map<String, Value>) -> std::result::Result<String, String> {
    let listed: Option<Vec<&str>> = match obj.get("cniVersions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or("\"cniVersions\" must be a list of strings")?,
        ),
        Some(_) => return Err("\"cniVersions\" must be a list of strings".to_owned()),
    };
    if let Some(v) = listed
        .as_ref()
        .and_then(|l| version::highest_supported(l.iter().copied()))
    {
        return Ok(v.to_owned());
    }
    let supported = SUPPORTED_VERSIONS.join(", ");
    match obj.get("cniVersion") {
        Some(Value::String(v)) if version::is_supported(v) => Ok(v.clone()),
        Some(Value::String(v)) => Err(format!(
            "cniVersion {v:?} is not supported (supported: {supported})"
        )),
        Some(Value::Null) | None => match listed {
            Some(l) => Err(format!(
                "none of cniVersions {l:?} is supported (supported: {supported})"
            )),
            None => Err("\"cniVersion\" is missing".to_owned()),
        },
        Some(_) => Err("\"cniVersion\" must be a string".to_owned()),
    }
}

/// A boolean flag; libcni also accepts the strings "true" and "false".
fn flag(obj: &Map<String, Value>, key: &str) -> std::result::Result<bool, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(format!("{key:?} must be true or false, not {other}")),
    }
}

fn validate_plugin(
    index: usize,
    plugin: &Value,
) -> std::result::Result<Map<String, Value>, String> {
    let obj = plugin
        .as_object()
        .ok_or_else(|| format!("plugins[{index}] must be a JSON object"))?;
    let plugin_type = match obj.get("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(format!("plugins[{index}]: \"type\" must be a string")),
        None => return Err(format!("plugins[{index}]: \"type\" is missing")),
    };
    if !is_valid_plugin_type(plugin_type) {
        return Err(format!(
            "plugins[{index}]: invalid plugin type {plugin_type:?} (must be a plain file name)"
        ));
    }
    match obj.get("capabilities") {
        None | Some(Value::Null) => {}
        Some(Value::Object(caps)) => {
            if let Some((k, _)) = caps.iter().find(|(_, v)| !v.is_boolean()) {
                return Err(format!(
                    "plugin {plugin_type}: capability {k:?} must be true or false"
                ));
            }
        }
        Some(_) => {
            return Err(format!(
                "plugin {plugin_type}: \"capabilities\" must be an object"
            ))
        }
    }
    Ok(obj.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_err(data: &str) -> String {
        match NetworkConfigList::from_slice(data.as_bytes(), "test.conflist") {
            Ok(l) => panic!("expected an error for {data}, got {l:?}"),
            Err(e @ Error::Config { .. }) => e.to_string(),
            Err(e) => panic!("expected a Config error, got {e:?}"),
        }
    }

    const LIST: &str = r#"{
        "cniVersion": "1.0.0",
        "name": "barge0",
        "disableCheck": true,
        "barge": {"subnet": "10.88.0.0/16"},
        "plugins": [
            {"type": "bridge", "bridge": "barge0", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    }"#;

    #[test]
    fn parses_a_conflist_and_keeps_unknown_keys() {
        let l = NetworkConfigList::from_slice(LIST.as_bytes(), "x").unwrap();
        assert_eq!(l.name, "barge0");
        assert_eq!(l.cni_version, "1.0.0");
        assert!(l.disable_check);
        assert!(!l.disable_gc);
        assert_eq!(l.plugin_types().collect::<Vec<_>>(), ["bridge", "portmap"]);
        assert_eq!(l.plugins[0]["bridge"], "barge0");
        assert_eq!(l.raw["barge"]["subnet"], "10.88.0.0/16");
        assert!(!l.check_enabled());
        assert!(!l.status_enabled());
        assert!(!l.gc_enabled());
        assert_eq!(l.path, None);
    }

    #[test]
    fn cni_versions_picks_the_highest_supported() {
        let l = NetworkConfigList::from_slice(
            br#"{"cniVersion":"1.0.0","cniVersions":["0.4.0","1.1.0","2.0.0"],"name":"n","plugins":[{"type":"a"}]}"#,
            "x",
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.1.0");
        assert!(l.gc_enabled() && l.status_enabled() && l.check_enabled());
        // No supported entry: fall back to cniVersion.
        let l = NetworkConfigList::from_slice(
            br#"{"cniVersion":"0.4.0","cniVersions":["9.0.0"],"name":"n","plugins":[{"type":"a"}]}"#,
            "x",
        )
        .unwrap();
        assert_eq!(l.cni_version, "0.4.0");
        let e = config_err(r#"{"cniVersions":["9.0.0"],"name":"n","plugins":[{"type":"a"}]}"#);
        assert!(e.contains("none of cniVersions"), "{e}");
        // disableGC turns GC off, as a string too (libcni accepts that).
        let l = NetworkConfigList::from_slice(
            br#"{"cniVersion":"1.1.0","disableGC":"true","name":"n","plugins":[{"type":"a"}]}"#,
            "x",
        )
        .unwrap();
        assert!(l.disable_gc && !l.gc_enabled() && l.status_enabled());
    }

    #[test]
    fn validation_errors_say_what_and_where() {
        let cases = [
            (r#"[1]"#, "must be a JSON object"),
            (r#"{"#, "not valid JSON"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#,
                "\"name\" is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"-bad","plugins":[{"type":"a"}]}"#,
                "invalid network name \"-bad\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"a"}]}"#,
                "invalid network name",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "network \"n\": \"plugins\" is empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
                "\"plugins\" is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"x":1}]}"#,
                "plugins[1]: \"type\" is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":7}]}"#,
                "\"type\" must be a string",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}"#,
                "invalid plugin type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a/b"}]}"#,
                "invalid plugin type \"a/b\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":".."}]}"#,
                "invalid plugin type",
            ),
            (
                r#"{"cniVersion":"0.2.0","name":"n","plugins":[{"type":"a"}]}"#,
                "cniVersion \"0.2.0\" is not supported",
            ),
            (
                r#"{"name":"n","plugins":[{"type":"a"}]}"#,
                "\"cniVersion\" is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","disableCheck":1,"plugins":[{"type":"a"}]}"#,
                "\"disableCheck\" must be true or false",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":{"x":"yes"}}]}"#,
                "capability \"x\"",
            ),
        ];
        for (doc, want) in cases {
            let e = config_err(doc);
            assert!(e.starts_with("test.conflist: "), "{e}");
            assert!(e.contains(want), "{doc}: {e:?} does not contain {want:?}");
        }
    }

    #[test]
    fn single_conf_becomes_a_list_of_one() {
        let l = NetworkConfigList::from_conf_slice(
            br#"{"cniVersion":"0.3.1","name":"old","type":"bridge","bridge":"br0"}"#,
            "old.conf",
        )
        .unwrap();
        assert_eq!(l.name, "old");
        assert_eq!(l.cni_version, "0.3.1");
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0]["type"], "bridge");
        assert_eq!(l.plugins[0]["bridge"], "br0");
        assert!(!l.plugins[0].contains_key("name"));
        assert!(!l.plugins[0].contains_key("cniVersion"));
        assert!(!l.check_enabled());
        let e =
            NetworkConfigList::from_conf_slice(br#"{"cniVersion":"1.0.0","name":"x"}"#, "x.conf")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("x.conf: network \"x\": plugins[0]: \"type\" is missing"),
            "{e}"
        );
    }

    #[test]
    fn name_validation() {
        for ok in ["a", "barge0", "A.b_c-d", "0net"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a b", "a/b", "ä", "a:b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn to_vec_pretty_round_trips_and_writes_typed_fields() {
        let mut l = NetworkConfigList::from_slice(LIST.as_bytes(), "x").unwrap();
        l.disable_gc = true;
        l.plugins[1].insert("snat".into(), json!(false));
        let bytes = l.to_vec_pretty().unwrap();
        let back = NetworkConfigList::from_slice(&bytes, "y").unwrap();
        assert!(back.disable_gc && back.disable_check);
        assert_eq!(back.plugins, l.plugins);
        assert_eq!(back.raw["barge"], json!({"subnet": "10.88.0.0/16"}));
        // A cniVersions document keeps its own version keys.
        let l = NetworkConfigList::from_slice(
            br#"{"cniVersion":"1.0.0","cniVersions":["1.0.0","1.1.0"],"name":"n","plugins":[{"type":"a"}]}"#,
            "x",
        )
        .unwrap();
        let v = l.to_value();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["cniVersions"], json!(["1.0.0", "1.1.0"]));
        assert!(v.get("disableGC").is_none());
    }

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        p
    }

    fn list_doc(name: &str, plugin: &str) -> String {
        format!(r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[{{"type":"{plugin}"}}]}}"#)
    }

    #[test]
    fn load_file_dispatches_on_extension() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.conflist", &list_doc("a", "bridge"));
        let l = NetworkConfigList::load_file(&p).unwrap();
        assert_eq!(l.path.as_deref(), Some(p.as_path()));
        let p = write(
            dir.path(),
            "b.json",
            r#"{"cniVersion":"1.0.0","name":"b","type":"x"}"#,
        );
        assert_eq!(NetworkConfigList::load_file(&p).unwrap().name, "b");
        let p = write(dir.path(), "c.txt", "{}");
        let e = NetworkConfigList::load_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("c.txt") && e.contains("unknown network config file type"),
            "{e}"
        );
        let missing = dir.path().join("missing.conflist");
        let e = NetworkConfigList::load_file(&missing).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
        assert!(e.to_string().contains("missing.conflist"), "{e}");
    }

    #[test]
    fn load_dir_sorts_skips_and_first_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "20-b.conflist", &list_doc("b", "second-b"));
        write(dir.path(), "10-b.conflist", &list_doc("b", "first-b"));
        write(
            dir.path(),
            "05-a.conf",
            r#"{"cniVersion":"1.0.0","name":"a","type":"x"}"#,
        );
        write(dir.path(), "30-broken.conflist", "{nope");
        write(dir.path(), "README.md", "not a config");
        fs::create_dir(dir.path().join("99-dir.conflist")).unwrap();
        let (lists, errors) = NetworkConfigList::load_dir(dir.path());
        let names: Vec<_> = lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(lists[1].plugins[0]["type"], "first-b");
        assert_eq!(errors.len(), 2, "{errors:?}");
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].contains("20-b.conflist") && msgs[0].contains("already defined in"),
            "{msgs:?}"
        );
        assert!(msgs[0].contains("10-b.conflist"), "{msgs:?}");
        assert!(
            msgs[1].contains("30-broken.conflist") && msgs[1].contains("not valid JSON"),
            "{msgs:?}"
        );

        let found = NetworkConfigList::find(dir.path(), "b").unwrap().unwrap();
        assert_eq!(found.plugins[0]["type"], "first-b");
        // Not found, but a broken file might have been it: its error is surfaced.
        let e = NetworkConfigList::find(dir.path(), "zzz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("30-broken.conflist"), "{e}");
        fs::remove_file(dir.path().join("30-broken.conflist")).unwrap();
        assert!(NetworkConfigList::find(dir.path(), "zzz")
            .unwrap()
            .is_none());

        let (lists, errors) = NetworkConfigList::load_dir(&dir.path().join("nope"));
        assert!(lists.is_empty() && errors.is_empty());
    }
}
