//! A YAML stream (documents separated by `---`) into typed Kubernetes objects. A kind barge
//! does not run, a document that is not an object, or one that does not fit its kind's shape
//! is an error naming the document.

use serde::Deserialize;

use super::check::Place;
use super::objects::{ClaimDoc, ConfigMapDoc, DeploymentDoc, PodDoc, SecretDoc};
use crate::error::{Error, Result};

/// The kinds `kube play` runs.
pub const KINDS: &str = "Pod, Deployment, ConfigMap, Secret, PersistentVolumeClaim";

/// One document of the stream.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<PodDoc>),
    Deployment(Box<DeploymentDoc>),
    ConfigMap(ConfigMapDoc),
    Secret(SecretDoc),
    Claim(ClaimDoc),
}

/// A document with its place in the stream.
#[derive(Debug, Clone)]
pub struct Doc {
    pub place: Place,
    pub object: Object,
}

/// A document as kind, name and raw value (what `down` needs).
#[derive(Debug, Clone)]
pub struct RawDoc {
    pub place: Place,
    pub namespace: String,
    pub value: serde_yaml::Value,
}

/// Split the stream and check each document's kind and apiVersion (empty documents are
/// skipped; a stream with no object is an error).
pub fn raw(yaml: &str) -> Result<Vec<RawDoc>> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let doc = i + 1;
        let value = serde_yaml::Value::deserialize(de)
            .map_err(|e| Error::BadParameter(format!("document #{doc}: not valid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        if !value.is_mapping() {
            return Err(Error::BadParameter(format!(
                "document #{doc}: not a Kubernetes object (a mapping with apiVersion and kind)"
            )));
        }
        let text = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let kind = text("kind").to_string();
        let api = text("apiVersion");
        let meta = |k: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let place = Place {
            doc,
            kind: if kind.is_empty() {
                "no kind".into()
            } else {
                kind.clone()
            },
            name: meta("name"),
        };
        let want = match kind.as_str() {
            "Pod" | "ConfigMap" | "Secret" | "PersistentVolumeClaim" => "v1",
            "Deployment" => "apps/v1",
            "" => {
                return Err(Error::BadParameter(format!(
                    "{place}: no kind (barge's kube play runs {KINDS})"
                )))
            }
            other => {
                return Err(Error::BadParameter(format!(
                    "{place}: kind {other} is not supported (barge's kube play runs {KINDS})"
                )))
            }
        };
        if api != want {
            return Err(Error::BadParameter(format!(
                "{place}: apiVersion {api:?} is not supported for {kind} (use {want})"
            )));
        }
        if place.name.is_empty() {
            return Err(Error::BadParameter(format!(
                "{place}: metadata.name is required"
            )));
        }
        let namespace = match meta("namespace") {
            n if n.is_empty() => "default".to_string(),
            n => n,
        };
        out.push(RawDoc {
            place,
            namespace,
            value,
        });
    }
    if out.is_empty() {
        return Err(Error::BadParameter(
            "the YAML has no Kubernetes object in it".into(),
        ));
    }
    Ok(out)
}

/// The stream's documents, typed.
pub fn documents(yaml: &str) -> Result<Vec<Doc>> {
    raw(yaml)?
        .into_iter()
        .map(|r| {
            let bad = |e: serde_yaml::Error| Error::BadParameter(format!("{}: {e}", r.place));
            let v = r.value;
            let object = match r.place.kind.as_str() {
                "Pod" => Object::Pod(Box::new(serde_yaml::from_value(v).map_err(bad)?)),
                "Deployment" => {
                    Object::Deployment(Box::new(serde_yaml::from_value(v).map_err(bad)?))
                }
                "ConfigMap" => Object::ConfigMap(serde_yaml::from_value(v).map_err(bad)?),
                "Secret" => Object::Secret(serde_yaml::from_value(v).map_err(bad)?),
                _ => Object::Claim(serde_yaml::from_value(v).map_err(bad)?),
            };
            Ok(Doc {
                place: r.place,
                object,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_documents() {
        let docs = documents(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: x, image: bb}]\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].place.doc, 3);
        let e = documents("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("document #1 (Service s): kind Service is not supported"),
            "{e}"
        );
        let e =
            documents("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("document #1 (Pod p): "), "{e}");
        assert!(documents("").is_err());
        assert!(documents("- a\n- b\n").is_err());
        assert!(documents("apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\n").is_err());
        assert!(documents("apiVersion: v1\nkind: Pod\nmetadata: {}\n").is_err());
    }
}
