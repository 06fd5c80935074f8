//! ConfigMap and Secret contents (keys to bytes) and what containers take from them: single
//! keys and whole objects as environment variables, keys as files of a volume.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::check::{Findings, Place};
use super::objects::{ConfigMapDoc, KeyToPath, SecretDoc};

/// Which kind of object a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
}

type Data = BTreeMap<String, Vec<u8>>;

/// The ConfigMaps and Secrets of one YAML stream, by (kind, namespace, name).
#[derive(Debug, Default)]
pub struct Sources {
    objects: BTreeMap<(&'static str, String, String), Data>,
}

/// Kubernetes' rule for ConfigMap and Secret keys (they become file names).
fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Sources {
    fn insert(&mut self, kind: Kind, ns: &str, place: &Place, data: Data, f: &mut Findings) {
        let key = (kind.as_str(), ns.to_string(), place.name.clone());
        if self.objects.contains_key(&key) {
            f.refuse(
                place,
                "metadata.name",
                format!(
                    "a second {} {} in namespace {ns}",
                    kind.as_str(),
                    place.name
                ),
            );
            return;
        }
        self.objects.insert(key, data);
    }

    pub fn add_config_map(
        &mut self,
        place: &Place,
        ns: &str,
        doc: &ConfigMapDoc,
        f: &mut Findings,
    ) {
        let mut data = Data::new();
        for (k, v) in &doc.data {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        for (k, v) in &doc.binary_data {
            if data.contains_key(k) {
                f.refuse(place, &format!("binaryData.{k}"), "the key is also in data");
            }
            match base64::engine::general_purpose::STANDARD.decode(v.trim()) {
                Ok(b) => {
                    data.insert(k.clone(), b);
                }
                Err(e) => f.refuse(
                    place,
                    &format!("binaryData.{k}"),
                    format!("not base64: {e}"),
                ),
            }
        }
        check_keys(place, &data, f);
        self.insert(Kind::ConfigMap, ns, place, data, f);
    }

    pub fn add_secret(&mut self, place: &Place, ns: &str, doc: &SecretDoc, f: &mut Findings) {
        let mut data = Data::new();
        for (k, v) in &doc.data {
            // Kubernetes tolerates line breaks in long base64 values.
            let clean: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(clean) {
                Ok(b) => {
                    data.insert(k.clone(), b);
                }
                Err(e) => f.refuse(place, &format!("data.{k}"), format!("not base64: {e}")),
            }
        }
        // stringData wins over data (Kubernetes merges it in on write).
        for (k, v) in &doc.string_data {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        check_keys(place, &data, f);
        self.insert(Kind::Secret, ns, place, data, f);
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Data> {
        self.objects
            .get(&(kind.as_str(), ns.to_string(), name.to_string()))
    }

    /// One key as an environment value: Ok(None) when missing and optional; Err says what is
    /// missing or not text.
    pub fn env_value(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, String> {
        let Some(data) = self.get(kind, ns, name) else {
            return if optional {
                Ok(None)
            } else {
                Err(format!(
                    "{} {name} is not in the YAML (and the reference is not optional)",
                    kind.as_str()
                ))
            };
        };
        match data.get(key) {
            None if optional => Ok(None),
            None => Err(format!("{} {name} has no key {key:?}", kind.as_str())),
            Some(v) => String::from_utf8(v.clone())
                .map(Some)
                .map_err(|_| format!("{} {name} key {key:?} is not text", kind.as_str())),
        }
    }

    /// The files of a ConfigMap or Secret volume: (relative path, content, mode). `items`
    /// selects and renames keys; without it every key is a file. A missing object is an
    /// empty directory when `optional`.
    pub fn files(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        items: &[KeyToPath],
        default_mode: u32,
        optional: bool,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
        let Some(data) = self.get(kind, ns, name) else {
            return if optional {
                Ok(Vec::new())
            } else {
                Err(format!(
                    "{} {name} is not in the YAML (and the volume is not optional)",
                    kind.as_str()
                ))
            };
        };
        if items.is_empty() {
            return Ok(data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), default_mode))
                .collect());
        }
        let mut out = Vec::new();
        for it in items {
            let Some(v) = data.get(&it.key) else {
                if optional {
                    continue;
                }
                return Err(format!("{} {name} has no key {:?}", kind.as_str(), it.key));
            };
            if !relative_path_ok(&it.path) {
                return Err(format!(
                    "items path {:?} must be a relative path without \"..\"",
                    it.path
                ));
            }
            let mode = it.mode.unwrap_or(default_mode);
            if mode > 0o777 {
                return Err(format!("items mode {mode:#o} is not a file mode"));
            }
            out.push((it.path.clone(), v.clone(), mode));
        }
        Ok(out)
    }
}

/// A relative path that stays inside its directory.
pub fn relative_path_ok(p: &str) -> bool {
    !p.is_empty() && !p.starts_with('/') && p.split('/').all(|c| !c.is_empty() && c != "..")
}

fn check_keys(place: &Place, data: &Data, f: &mut Findings) {
    for k in data.keys() {
        if !valid_key(k) {
            f.refuse(
                place,
                &format!("data.{k}"),
                "a key must be letters, digits, '-', '_' or '.' (it is a file name)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(kind: &str, name: &str) -> Place {
        Place {
            doc: 1,
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn secrets_and_config_maps() {
        let mut s = Sources::default();
        let mut f = Findings::default();
        let mut sec = SecretDoc::default();
        sec.data.insert("pw".into(), "aHVudGVyMg==".into());
        sec.string_data.insert("user".into(), "bob".into());
        s.add_secret(&place("Secret", "creds"), "default", &sec, &mut f);
        let mut cm = ConfigMapDoc::default();
        cm.data.insert("app.conf".into(), "x=1\n".into());
        cm.data.insert("../evil".into(), "x".into());
        s.add_config_map(&place("ConfigMap", "cfg"), "default", &cm, &mut f);
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert!(f.errors[0].contains("data.../evil"), "{:?}", f.errors);
        assert_eq!(
            s.env_value(Kind::Secret, "default", "creds", "pw", false)
                .unwrap(),
            Some("hunter2".into())
        );
        assert_eq!(
            s.env_value(Kind::Secret, "default", "creds", "nope", true)
                .unwrap(),
            None
        );
        assert!(s
            .env_value(Kind::Secret, "other", "creds", "pw", false)
            .is_err());
        assert!(s
            .env_value(Kind::ConfigMap, "default", "creds", "pw", false)
            .is_err());
        let files = s
            .files(
                Kind::ConfigMap,
                "default",
                "cfg",
                &[KeyToPath {
                    key: "app.conf".into(),
                    path: "sub/app.conf".into(),
                    mode: Some(0o600),
                }],
                0o644,
                false,
            )
            .unwrap();
        assert_eq!(
            files,
            vec![("sub/app.conf".into(), b"x=1\n".to_vec(), 0o600)]
        );
        let bad = KeyToPath {
            key: "app.conf".into(),
            path: "../x".into(),
            mode: None,
        };
        assert!(s
            .files(Kind::ConfigMap, "default", "cfg", &[bad], 0o644, false)
            .is_err());
        assert!(s
            .files(Kind::ConfigMap, "default", "gone", &[], 0o644, false)
            .is_err());
        assert!(s
            .files(Kind::ConfigMap, "default", "gone", &[], 0o644, true)
            .unwrap()
            .is_empty());
        let mut bad = SecretDoc::default();
        bad.data.insert("k".into(), "not base64!".into());
        s.add_secret(&place("Secret", "bad"), "default", &bad, &mut f);
        assert!(
            f.errors.iter().any(|e| e.contains("data.k: not base64")),
            "{:?}",
            f.errors
        );
    }
}
