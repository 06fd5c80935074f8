//! docker's list filters (`--filter KEY=VALUE`, the API's `filters` query parameter), parsed
//! from either form clients send, and matched against containers (`container.rs`).
//! Several values of one key match when any does (labels: when all do); different keys must
//! all match.

pub mod container;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

/// Filter terms: key → values, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    terms: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// From command-line `KEY=VALUE` strings (`label=a=b` keeps `a=b` as the value).
    pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Filters> {
        let mut f = Filters::default();
        for a in args {
            let a = a.as_ref();
            let Some((k, v)) = a.split_once('=') else {
                return Err(Error::BadParameter(format!(
                    "--filter {a:?}: expected KEY=VALUE"
                )));
            };
            f.add(k.trim(), v);
        }
        Ok(f)
    }

    /// From the API's JSON: `{"status":["running"]}` (current) or `{"label":{"a=b":true}}`
    /// (the older map form, still sent by some clients). An empty text is no filter.
    pub fn parse_json(text: &str) -> Result<Filters> {
        let mut f = Filters::default();
        if text.trim().is_empty() {
            return Ok(f);
        }
        let bad = |why: String| Error::BadParameter(format!("invalid filter {text:?}: {why}"));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Value::Object(map) = v else {
            return Err(bad("expected a JSON object".into()));
        };
        for (k, vals) in map {
            match vals {
                Value::Array(list) => {
                    for x in list {
                        match x {
                            Value::String(s) => f.add(&k, &s),
                            other => return Err(bad(format!("{k}: {other} is not a string"))),
                        }
                    }
                }
                Value::Object(set) => {
                    for (x, on) in set {
                        if on.as_bool() != Some(false) {
                            f.add(&k, &x);
                        }
                    }
                }
                other => {
                    return Err(bad(format!(
                        "{k}: expected a list or a map of values, not {other}"
                    )))
                }
            }
        }
        Ok(f)
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.terms
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }

    /// The values of `key` (empty when not filtered on).
    pub fn get(&self, key: &str) -> &[String] {
        self.terms.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.terms.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Refuse keys outside `known`, naming them and the known ones.
    pub fn check_keys(&self, known: &[&str]) -> Result<()> {
        match self.terms.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(Error::BadParameter(format!(
                "invalid filter '{k}' (known: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// Whether `value` is one of `key`'s values, or `key` is not filtered on.
    pub fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        let vals = self.get(key);
        vals.is_empty() || vals.iter().any(|v| pred(v))
    }

    /// Whether a label map satisfies every `key` term (`k` present, or `k=v`).
    pub fn labels_match(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|t| label_matches(t, labels))
    }
}

/// Whether `labels` carry `term`: `KEY` (any value) or `KEY=VALUE`.
pub fn label_matches(term: &str, labels: &BTreeMap<String, String>) -> bool {
    match term.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(term),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_json_forms_and_args_agree() {
        let a = Filters::parse_args(&["status=running", "label=a=b", "label=c"]).unwrap();
        let j = Filters::parse_json(r#"{"status":["running"],"label":["a=b","c"]}"#).unwrap();
        let m = Filters::parse_json(r#"{"status":{"running":true},"label":{"a=b":true,"c":true}}"#)
            .unwrap();
        assert_eq!(a, j);
        assert_eq!(a, m);
        assert_eq!(a.get("label"), ["a=b", "c"]);
        assert!(Filters::parse_json("").unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_named() {
        let e = Filters::parse_args(&["status"]).unwrap_err().to_string();
        assert!(e.contains("\"status\""), "{e}");
        assert!(Filters::parse_json("[1]").is_err());
        assert!(Filters::parse_json(r#"{"status":[1]}"#).is_err());
        assert!(Filters::parse_json(r#"{"status":"x"}"#).is_err());
        let f = Filters::parse_args(&["colour=red"]).unwrap();
        let e = f.check_keys(&["status"]).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn labels_all_must_match() {
        let f = Filters::parse_args(&["label=a=1", "label=b"]).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(!f.labels_match("label", &l));
        l.insert("b".to_string(), String::new());
        assert!(f.labels_match("label", &l));
        l.insert("a".to_string(), "2".to_string());
        assert!(!f.labels_match("label", &l));
    }
}
