//! `docker load`: an OCI archive (`index.json`) or a docker archive (`manifest.json`), read in
//! one pass (it may come from a pipe), its layers unpacked, its images named.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::scan::{self, Contents};
use super::{
    oci_layer_type, oci_manifest, sniffed, untagged_name, LayerDesc, CONTAINERD_NAME, REF_NAME,
};
use crate::apply::{apply_layer, LayerTarget};
use crate::config::Config;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Parsed};
use crate::meta::ImageRecord;
use crate::platform::Platform;
use crate::progress::{Event, LayerState, Progress};
use crate::reference::ImageRef;
use crate::store::Store;
use crate::unpack::Compression;

/// One image found in the archive, ready to be unpacked and named.
struct Planned {
    /// Canonical names; none means the image is recorded untagged.
    names: Vec<String>,
    target: Digest,
    manifest: Digest,
    config: Digest,
    layers: Vec<PlannedLayer>,
}

impl Planned {
    /// The image in messages: its first name, or its manifest digest.
    fn what(&self) -> String {
        match self.names.first() {
            Some(n) => n.clone(),
            None => format!("image {}", self.manifest),
        }
    }
}

struct PlannedLayer {
    digest: Digest,
    compression: Compression,
    /// The file in a docker archive (its name says nothing about the digest).
    path: Option<String>,
}

/// One image of a docker archive's `manifest.json`.
#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Read a docker-archive or OCI-archive tar (plain, gzip or zstd: sniffed) from `reader`, store
/// its blobs, unpack its layers and name its images. Returns the records named. Nothing is
/// named unless every image is complete; on failure what was written is collected again.
pub fn load(
    store: &Store,
    config: &Config,
    reader: impl Read,
    progress: &dyn Progress,
) -> Result<Vec<ImageRecord>> {
    let lease = store.lease()?;
    let result = load_locked(store, config, reader, progress);
    let recs = store.finish_writing(lease, result, "the failed load")?;
    for rec in &recs {
        store.emit(
            barge_events::Action::Load,
            &rec.config.to_string(),
            &rec.name,
        );
    }
    Ok(recs)
}

fn load_locked(
    store: &Store,
    config: &Config,
    reader: impl Read,
    progress: &dyn Progress,
) -> Result<(Vec<ImageRecord>, bool)> {
    let contents = scan::scan(store, sniffed(reader, "image archive")?)?;
    let images = if contents.metadata.contains_key("index.json") {
        oci_images(store, &contents)?
    } else if contents.metadata.contains_key("manifest.json") {
        docker_images(store, &contents)?
    } else {
        return Err(Error::invalid(
            "image archive",
            "it has neither index.json (OCI archive) nor manifest.json (docker archive)",
        ));
    };
    if images.is_empty() {
        return Err(Error::invalid("image archive", "it lists no images"));
    }
    for image in &images {
        apply(store, config, image, progress)?;
    }

    let now = crate::meta::now();
    let mut records: BTreeMap<String, ImageRecord> = BTreeMap::new();
    for image in &images {
        let names = if image.names.is_empty() {
            vec![untagged_name(&image.manifest)]
        } else {
            image.names.clone()
        };
        for name in names {
            let rec = ImageRecord {
                name: name.clone(),
                target: image.target.clone(),
                manifest: image.manifest.clone(),
                config: image.config.clone(),
                tagged: now,
            };
            records.insert(name, rec);
        }
    }
    let records: Vec<ImageRecord> = records.into_values().collect();
    let moved = store.record_names(&records)?;
    // An image untagged by an earlier load has a name now: the placeholder goes.
    for image in images.iter().filter(|i| !i.names.is_empty()) {
        store.db.delete_image(&untagged_name(&image.manifest))?;
    }
    for rec in &records {
        progress.event(Event::Done {
            reference: rec.name.clone(),
            digest: rec.target.clone(),
        });
    }
    // Files no image uses (other platforms, docker's legacy per-layer files) are collected.
    let mut used: HashSet<&Digest> = HashSet::new();
    for image in &images {
        used.extend([&image.target, &image.manifest, &image.config]);
        used.extend(image.layers.iter().map(|l| &l.digest));
    }
    let unused = contents.digests().any(|d| !used.contains(d));
    Ok((records, moved || unused))
}

/// Read a blob the archive holds (verified again on the way).
fn archive_blob(
    store: &Store,
    contents: &Contents,
    digest: &Digest,
    referenced_by: &str,
) -> Result<Vec<u8>> {
    contents.oci_blob(digest, referenced_by)?;
    store.content.read(digest)
}

/// The images of an OCI layout: each `index.json` entry, a nested index resolved to the
/// host's platform.
fn oci_images(store: &Store, contents: &Contents) -> Result<Vec<Planned>> {
    let bytes = contents
        .metadata
        .get("index.json")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Parsed::Index(index) = manifest::parse(
        bytes,
        Some(manifest::OCI_INDEX),
        "index.json of the image archive",
    )?
    else {
        return Err(Error::invalid(
            "image archive: index.json",
            "not an image index",
        ));
    };
    let docker_tags = match contents.metadata.get("manifest.json") {
        Some(bytes) => docker_tags(contents, bytes)?,
        None => HashMap::new(),
    };
    let mut images: Vec<Planned> = Vec::new();
    for desc in index.manifests() {
        let target = manifest::digest_of(desc)?;
        let bytes = archive_blob(store, contents, &target, "index.json")?;
        let media_type = desc.media_type().to_string();
        let (manifest_digest, image_manifest) =
            match manifest::parse(&bytes, Some(&media_type), target.as_str())? {
                Parsed::Manifest(m) => (target.clone(), m),
                Parsed::Index(child) => {
                    let what = format!("image index {target} of the archive");
                    let chosen = manifest::select(&child, &Platform::host(), &what)?;
                    let digest = manifest::digest_of(chosen)?;
                    let bytes = archive_blob(store, contents, &digest, &what)?;
                    match manifest::parse(
                        &bytes,
                        Some(chosen.media_type().as_ref()),
                        digest.as_str(),
                    )? {
                        Parsed::Manifest(m) => (digest, m),
                        Parsed::Index(_) => {
                            return Err(Error::invalid(
                                format!("image archive: manifest {digest}"),
                                "an index inside an index",
                            ));
                        }
                    }
                }
            };
        let by = format!("manifest {manifest_digest}");
        let config = manifest::digest_of(image_manifest.config())?;
        contents.oci_blob(&config, &by)?;
        let mut layers = Vec::new();
        for l in image_manifest.layers() {
            let digest = manifest::digest_of(l)?;
            contents.oci_blob(&digest, &by)?;
            let compression =
                Compression::from_media_type(l.media_type().as_ref()).ok_or_else(|| {
                    Error::invalid(
                        format!("image archive: layer {digest} of {by}"),
                        format!("media type {}", l.media_type()),
                    )
                })?;
            layers.push(PlannedLayer {
                digest,
                compression,
                path: None,
            });
        }
        let names = oci_names(desc, &target, docker_tags.get(&config))?;
        add(
            &mut images,
            Planned {
                names,
                target,
                manifest: manifest_digest,
                config,
                layers,
            },
        );
    }
    Ok(images)
}

/// Merge an image into the list (several `index.json` entries may name the same image).
fn add(images: &mut Vec<Planned>, image: Planned) {
    match images
        .iter_mut()
        .find(|i| i.target == image.target && i.manifest == image.manifest)
    {
        Some(known) => {
            for n in image.names {
                if !known.names.contains(&n) {
                    known.names.push(n);
                }
            }
        }
        None => images.push(image),
    }
}

/// The names of an `index.json` entry: containerd's annotation, else a full reference in the
/// OCI ref name, else the RepoTags `manifest.json` gives the same config (docker ≥ 25 writes
/// both files), else none.
fn oci_names(
    desc: &Descriptor,
    target: &Digest,
    docker_tags: Option<&Vec<String>>,
) -> Result<Vec<String>> {
    let annotation = |key: &str| desc.annotations().as_ref().and_then(|a| a.get(key));
    if let Some(name) = annotation(CONTAINERD_NAME) {
        let r = ImageRef::parse(name).map_err(|e| {
            Error::invalid(
                format!("image archive: index.json entry {target}: annotation {CONTAINERD_NAME}"),
                e.to_string(),
            )
        })?;
        return Ok(vec![r.canonical()]);
    }
    if let Some(r) = annotation(REF_NAME)
        .filter(|r| r.contains(['/', ':']))
        .and_then(|r| ImageRef::parse(r).ok())
    {
        return Ok(vec![r.canonical()]);
    }
    Ok(docker_tags.cloned().unwrap_or_default())
}

fn parse_docker_manifest(bytes: &[u8]) -> Result<Vec<DockerEntry>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("image archive: manifest.json", e.to_string()))
}

fn repo_tags(entry: &DockerEntry) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for tag in entry.repo_tags.iter().flatten() {
        let r = ImageRef::parse(tag).map_err(|e| {
            Error::invalid(
                format!("image archive: manifest.json: RepoTags entry {tag:?}"),
                e.to_string(),
            )
        })?;
        names.push(r.canonical());
    }
    Ok(names)
}

/// Config digest → canonical names, from `manifest.json`.
fn docker_tags(contents: &Contents, bytes: &[u8]) -> Result<HashMap<Digest, Vec<String>>> {
    let mut out: HashMap<Digest, Vec<String>> = HashMap::new();
    for entry in parse_docker_manifest(bytes)? {
        let config = contents.blob(&entry.config, "manifest.json")?;
        out.entry(config).or_default().extend(repo_tags(&entry)?);
    }
    Ok(out)
}

/// The images of a docker archive; each gets an OCI manifest made for it.
fn docker_images(store: &Store, contents: &Contents) -> Result<Vec<Planned>> {
    let bytes = contents
        .metadata
        .get("manifest.json")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut images = Vec::new();
    for entry in parse_docker_manifest(bytes)? {
        let config = contents.blob(&entry.config, "manifest.json")?;
        let mut descs = Vec::new();
        let mut layers = Vec::new();
        for path in &entry.layers {
            let digest = contents.blob(path, "manifest.json")?;
            let compression = sniff_blob(store, &digest)?;
            descs.push(LayerDesc {
                media_type: oci_layer_type(compression),
                size: store.content.size(&digest)?,
                digest: digest.clone(),
            });
            layers.push(PlannedLayer {
                digest,
                compression,
                path: Some(path.clone()),
            });
        }
        let bytes = oci_manifest(&config, store.content.size(&config)?, &descs)?;
        let manifest_digest = store.content.write(&bytes, None)?;
        add(
            &mut images,
            Planned {
                names: repo_tags(&entry)?,
                target: manifest_digest.clone(),
                manifest: manifest_digest,
                config,
                layers,
            },
        );
    }
    Ok(images)
}

/// A stored layer's compression, from its first bytes.
fn sniff_blob(store: &Store, digest: &Digest) -> Result<Compression> {
    let mut head = Vec::with_capacity(4);
    store
        .content
        .open_blob(digest)?
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("read blob", store.content.path(digest), e))?;
    Ok(Compression::sniff(&head))
}

/// Check an image's config against its layers and unpack the layers not there yet.
fn apply(store: &Store, config: &Config, image: &Planned, progress: &dyn Progress) -> Result<()> {
    let what = image.what();
    let bytes = store.content.read(&image.config)?;
    let (_, diff_ids) = manifest::parse_config(&bytes, &format!("{} of {what}", image.config))?;
    if diff_ids.len() != image.layers.len() {
        return Err(Error::invalid(
            what,
            format!(
                "the manifest has {} layers but the config lists {} diff IDs",
                image.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let chain = crate::snapshot::chain_ids(&diff_ids);
    for (i, layer) in image.layers.iter().enumerate() {
        let event = |state| {
            progress.event(Event::Layer {
                digest: layer.digest.clone(),
                state,
            })
        };
        if store.snapshots.committed(chain[i].as_str())? {
            event(LayerState::Exists);
            continue;
        }
        event(LayerState::Extracting);
        let layer_what = match &layer.path {
            Some(path) => format!("{} ({path:?} in the archive) of {what}", layer.digest),
            None => format!("{} of {what}", layer.digest),
        };
        let target = LayerTarget {
            what: &layer_what,
            diff_id: &diff_ids[i],
            chain: &chain[i],
            parent: i.checked_sub(1).map(|p| &chain[p]),
        };
        apply_layer(
            store,
            &config.limits,
            &target,
            layer.compression,
            store.content.open_blob(&layer.digest)?,
        )?;
        event(LayerState::Complete);
    }
    Ok(())
}
