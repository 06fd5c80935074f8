//! Images as docker shows them: `GET /images/json` entries and `docker image inspect`.

use std::collections::BTreeSet;

use barge_image::digest::Digest;
use barge_image::meta::ImageRecord;
use barge_image::reference::{familiar, split_stored};
use barge_image::store::Store;
use serde_json::{json, Value};

use crate::error::Result;

/// The name docker shows for a stored name: `busybox:latest`, `<none>:<none>`.
pub fn display_name(stored: &str) -> String {
    let (repo, tag, _) = split_stored(stored);
    format!("{}:{tag}", familiar(repo))
}

/// `RepoTags` and `RepoDigests` of the image `id`.
pub fn repo_tags_digests(store: &Store, id: &Digest) -> Result<(Vec<String>, Vec<String>)> {
    let names = store.names_of(id)?;
    let tags = names
        .iter()
        .filter(|n| !n.name.contains('@') && !n.name.starts_with("<none>"))
        .map(|n| display_name(&n.name))
        .collect();
    let digests: BTreeSet<String> = names
        .iter()
        .map(|n| format!("{}@{}", familiar(split_stored(&n.name).0), n.target))
        .filter(|d| !d.starts_with("<none>"))
        .collect();
    Ok((tags, digests.into_iter().collect()))
}

/// `docker image inspect`'s document for the image `rec` names.
pub fn inspect(store: &Store, rec: &ImageRecord) -> Result<Value> {
    let img = store.image(rec)?;
    let (tags, digests) = repo_tags_digests(store, &rec.config)?;
    let cfg = &img.config;
    let lower: Vec<String> = img
        .chain
        .iter()
        .rev()
        .filter_map(|c| store.db.snapshot(c.as_str()).ok().flatten())
        .map(|s| store.snapshots.fs_dir(s.id).display().to_string())
        .collect();
    Ok(json!({
        "Id": rec.config.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": cfg.history().as_ref().and_then(|h| h.last()).and_then(|h| h.comment().clone()).unwrap_or_default(),
        "Created": cfg.created().clone().unwrap_or_default(),
        "Author": cfg.author().clone().unwrap_or_default(),
        "Config": cfg.config(),
        "Architecture": cfg.architecture().to_string(),
        "Variant": cfg.variant(),
        "Os": cfg.os().to_string(),
        "Size": store.size(&img)?,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower.join(":")}},
        "RootFS": {"Type": "layers", "Layers": img.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": barge_util::time::rfc3339_nano(rec.tagged, 0)},
        "Descriptor": {"digest": rec.manifest.to_string(), "target": rec.target.to_string()},
    }))
}

/// An image config's creation time (unix seconds, when it has a readable one) and labels:
/// what the list entry shows and what prune filters test.
pub fn created_and_labels(
    config: &oci_spec::image::ImageConfiguration,
) -> (Option<i64>, std::collections::BTreeMap<String, String>) {
    let created = config
        .created()
        .as_deref()
        .and_then(super::time::parse_rfc3339);
    let labels = config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    (created, labels)
}

/// One entry of `GET /images/json` for the image `rec` names (all its names together).
pub fn summary(store: &Store, rec: &ImageRecord) -> Result<Value> {
    let img = store.image(rec)?;
    let (tags, digests) = repo_tags_digests(store, &rec.config)?;
    let (created, labels) = created_and_labels(&img.config);
    let created = created.unwrap_or(0);
    let size = store.size(&img)?;
    Ok(json!({
        "Id": rec.config.to_string(),
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": created,
        "Size": size,
        "VirtualSize": size,
        "SharedSize": -1,
        "Labels": labels,
        "Containers": -1,
    }))
}

/// `GET /images/json`: one entry per image (config digest), oldest name's record first.
pub fn list(store: &Store) -> Result<Vec<Value>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rec in store.db.images()? {
        if seen.insert(rec.config.to_string()) {
            // An image whose blobs went missing is left out rather than failing the list.
            if let Ok(v) = summary(store, &rec) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names() {
        assert_eq!(
            super::display_name("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
    }
}
