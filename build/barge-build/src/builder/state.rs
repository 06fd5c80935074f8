//! A stage being built: its image config (the OCI `config` object), its layers, its history,
//! the ARGs in effect; and the image config and manifest it makes.

use std::collections::BTreeMap;

use barge_image::digest::Digest;
use barge_image::meta::ImageRecord;
use barge_image::snapshot::chain_ids;
use barge_image::store::{Image, Store};
use serde_json::{json, Map, Value};

use super::error::{BuildError, Result};
use super::layer::LayerRef;

/// Where a stage stands after its last instruction.
#[derive(Debug, Clone)]
pub struct StageState {
    /// The OCI image config's `config` object (`Env`, `Cmd`, `WorkingDir`…).
    pub config: Map<String, Value>,
    pub layers: Vec<LayerRef>,
    pub history: Vec<Value>,
    pub author: Option<String>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// ARGs declared in the stage, with their values.
    pub args: BTreeMap<String, String>,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    pub cmd_set: bool,
    /// ONBUILD triggers inherited from the base image (run right after FROM).
    pub triggers: Vec<String>,
    /// The time of the stage's last step (see `Builder::time`); None: not known.
    pub clock: Option<String>,
}

impl StageState {
    /// An empty stage (`FROM scratch`) for `platform`.
    pub fn scratch(platform: &barge_image::platform::Platform) -> StageState {
        StageState {
            config: Map::new(),
            layers: Vec::new(),
            history: Vec::new(),
            author: None,
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
            args: BTreeMap::new(),
            cmd_set: false,
            triggers: Vec::new(),
            clock: None,
        }
    }

    /// A stage starting from the stored image `rec`.
    pub fn from_image(store: &Store, rec: &ImageRecord) -> Result<StageState> {
        let image = store.image(rec)?;
        let raw: Value = serde_json::from_slice(&store.content.read(&rec.config)?)
            .map_err(|e| BuildError::other(format!("image config {}: {e}", rec.config)))?;
        let mut config = raw
            .get("config")
            .and_then(|c| c.as_object())
            .cloned()
            .unwrap_or_default();
        let triggers: Vec<String> = config
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let layers = image
            .manifest
            .layers()
            .iter()
            .zip(&image.diff_ids)
            .map(|(l, d)| {
                Ok(LayerRef {
                    digest: Digest::parse(l.digest().as_ref())?,
                    diff_id: d.clone(),
                    size: l.size(),
                    media_type: l.media_type().to_string(),
                })
            })
            .collect::<Result<Vec<_>, barge_image::Error>>()?;
        let s = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let clock = s("created");
        Ok(StageState {
            config,
            layers,
            history: raw
                .get("history")
                .and_then(|h| h.as_array())
                .cloned()
                .unwrap_or_default(),
            author: s("author"),
            os: s("os").unwrap_or_else(|| "linux".into()),
            architecture: s("architecture").unwrap_or_else(|| "amd64".into()),
            variant: s("variant"),
            args: BTreeMap::new(),
            cmd_set: false,
            triggers,
            clock,
        })
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The chain ID of the top layer (the snapshot RUN and COPY work on).
    pub fn top(&self) -> Option<Digest> {
        chain_ids(&self.diff_ids()).pop()
    }

    /// `Env` as (name, value) pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .get("Env")
            .and_then(|e| e.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
        let list: Vec<Value> = env.iter().map(|(k, v)| json!(format!("{k}={v}"))).collect();
        self.config.insert("Env".into(), Value::Array(list));
    }

    /// A variable for substitution: ENV first, then the stage's ARGs.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.args.get(name).cloned())
    }

    pub fn str_field(&self, key: &str) -> String {
        self.config
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// `Shell`, or `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The image config document (`created` fixed by the caller).
    pub fn image_config(&self, created: &str) -> Value {
        let mut config = self.config.clone();
        if let Some(Value::Array(t)) = config.get("OnBuild") {
            if t.is_empty() {
                config.remove("OnBuild");
            }
        }
        let mut v = json!({
            "created": created,
            "architecture": self.architecture,
            "os": self.os,
            "config": Value::Object(config),
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids()},
            "history": self.history,
        });
        if let Some(a) = &self.author {
            v["author"] = json!(a);
        }
        if let Some(var) = &self.variant {
            v["variant"] = json!(var);
        }
        v
    }

    /// The OCI manifest for a config blob of `config_digest`/`config_size`.
    pub fn manifest(&self, config_digest: &Digest, config_size: usize) -> Value {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
            .collect();
        json!({
            "schemaVersion": 2,
            "mediaType": barge_image::manifest::OCI_MANIFEST,
            "config": {"mediaType": barge_image::manifest::OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        })
    }

    /// The stage as an in-memory image (not stored): what a RUN container is created from.
    /// Volumes, ports and the health check are left out (RUN mounts no volume).
    pub fn as_image(&self) -> Result<Image> {
        let mut s = self.clone();
        for k in ["Volumes", "ExposedPorts", "Healthcheck", "OnBuild"] {
            s.config.remove(k);
        }
        let config_bytes = serde_json::to_vec(&s.image_config("1970-01-01T00:00:00Z"))
            .map_err(|e| BuildError::other(format!("stage config: {e}")))?;
        let config_digest = Digest::of(&config_bytes);
        let manifest_bytes = serde_json::to_vec(&s.manifest(&config_digest, config_bytes.len()))
            .map_err(|e| BuildError::other(format!("stage manifest: {e}")))?;
        let manifest_digest = Digest::of(&manifest_bytes);
        let barge_image::manifest::Parsed::Manifest(manifest) =
            barge_image::manifest::parse(&manifest_bytes, None, "of a build stage")?
        else {
            return Err(BuildError::other("stage manifest parsed as an index"));
        };
        let (config, diff_ids) =
            barge_image::manifest::parse_config(&config_bytes, "of a build stage")?;
        let chain = chain_ids(&diff_ids);
        Ok(Image {
            record: ImageRecord {
                name: "barge-build".into(),
                target: manifest_digest.clone(),
                manifest: manifest_digest,
                config: config_digest,
                tagged: 0,
            },
            manifest: *manifest,
            config,
            diff_ids,
            chain,
        })
    }
}
