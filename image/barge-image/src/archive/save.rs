//! `docker save`: images as one tar holding both an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) and docker's `manifest.json` over the same blobs, as
//! docker ≥ 25 writes it, so docker-archive and OCI-archive readers both take it.

use std::collections::HashSet;
use std::io::{Read, Write};

use serde_json::{json, Map, Value};

use super::scan::oci_path;
use super::{ArchiveFormat, CONTAINERD_NAME, REF_NAME};
use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use crate::manifest;
use crate::meta::ImageRecord;
use crate::reference::{familiar, split_stored, ImageRef};
use crate::store::{Image, Store};

/// One image to save, and the name it was asked for by (if that name has a tag).
struct Saved {
    record: ImageRecord,
    image: Image,
    media_type: String,
    manifest_size: u64,
    /// (repository, tag) when asked for by a tagged name; an ID or a digest saves untagged.
    tag: Option<(String, String)>,
}

/// Write the images `names` (names or IDs, resolved like `docker save` does) as one tar to
/// `writer`. Every name is resolved before the first byte is written.
pub fn save(
    store: &Store,
    names: &[String],
    format: ArchiveFormat,
    writer: impl Write,
) -> Result<()> {
    if names.is_empty() {
        return Err(Error::invalid("image save", "no image given"));
    }
    let mut saved = Vec::new();
    for name in names {
        saved.push(resolve(store, name)?);
    }
    let mut blobs: Vec<Digest> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    for s in &saved {
        let layers = s
            .image
            .manifest
            .layers()
            .iter()
            .map(manifest::digest_of)
            .collect::<Result<Vec<_>>>()?;
        for d in layers
            .into_iter()
            .chain([s.record.config.clone(), s.record.manifest.clone()])
        {
            if seen.insert(d.clone()) {
                blobs.push(d);
            }
        }
    }

    let mut tar = tar::Builder::new(writer);
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    for d in &blobs {
        append_blob(&mut tar, store, d)?;
    }
    append_bytes(
        &mut tar,
        "index.json",
        &json_bytes(&index(&saved), "index.json")?,
    )?;
    if format == ArchiveFormat::DockerArchive {
        append_bytes(
            &mut tar,
            "manifest.json",
            &json_bytes(&docker_manifest(&saved)?, "manifest.json")?,
        )?;
    }
    let mut writer = tar.into_inner().map_err(write_err)?;
    writer.flush().map_err(write_err)?;
    for s in &saved {
        store.emit(
            barge_events::Action::Save,
            &s.record.config.to_string(),
            &s.record.name,
        );
    }
    Ok(())
}

fn resolve(store: &Store, name: &str) -> Result<Saved> {
    let record = store.resolve(name)?;
    let by_name = ImageRef::parse(name).is_ok_and(|r| r.canonical() == record.name);
    let (repo, tag, digest) = split_stored(&record.name);
    let tag = (by_name && digest.is_none()).then(|| (repo.to_string(), tag.to_string()));
    let image = store.image(&record)?;
    let bytes = store.content.read(&record.manifest)?;
    let media_type = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
    Ok(Saved {
        manifest_size: bytes.len() as u64,
        record,
        image,
        media_type,
        tag,
    })
}

/// `index.json`: one entry per name, one without annotations per untagged image.
fn index(saved: &[Saved]) -> Value {
    let mut entries: Vec<Value> = Vec::new();
    for s in saved {
        let mut desc = json!({
            "mediaType": s.media_type,
            "digest": s.record.manifest,
            "size": s.manifest_size,
        });
        if let Some((_, tag)) = &s.tag {
            let mut annotations = Map::new();
            annotations.insert(CONTAINERD_NAME.into(), json!(s.record.name));
            annotations.insert(REF_NAME.into(), json!(tag));
            desc["annotations"] = Value::Object(annotations);
        }
        if !entries.contains(&desc) {
            entries.push(desc);
        }
    }
    json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": entries,
    })
}

/// `manifest.json`: one entry per image ID, with its familiar `repo:tag` names.
fn docker_manifest(saved: &[Saved]) -> Result<Value> {
    let mut entries: Vec<(Digest, Value)> = Vec::new();
    for s in saved {
        let config = &s.record.config;
        let i = match entries.iter().position(|(c, _)| c == config) {
            Some(i) => i,
            None => {
                let layers = s
                    .image
                    .manifest
                    .layers()
                    .iter()
                    .map(|l| manifest::digest_of(l).map(|d| oci_path(&d)))
                    .collect::<Result<Vec<_>>>()?;
                let entry = json!({"Config": oci_path(config), "RepoTags": [], "Layers": layers});
                entries.push((config.clone(), entry));
                entries.len() - 1
            }
        };
        if let Some((repo, tag)) = &s.tag {
            let name = json!(format!("{}:{tag}", familiar(repo)));
            if let Some(tags) = entries[i].1["RepoTags"].as_array_mut() {
                if !tags.contains(&name) {
                    tags.push(name);
                }
            }
        }
    }
    Ok(Value::Array(entries.into_iter().map(|(_, v)| v).collect()))
}

fn json_bytes(v: &Value, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(v)
        .map_err(|e| Error::invalid(format!("image archive {what}"), e.to_string()))
}

fn write_err(e: std::io::Error) -> Error {
    Error::io("write", "image archive", e)
}

/// A header every entry shares: root-owned, mtime 0, so the same images give the same bytes.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(write_err)
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    tar.append_data(&mut h, path, data).map_err(write_err)
}

/// Stream a blob from the content store, checking its length and digest on the way.
fn append_blob<W: Write>(tar: &mut tar::Builder<W>, store: &Store, digest: &Digest) -> Result<()> {
    let path = store.content.path(digest);
    let file = store.content.open_blob(digest)?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("stat blob", &path, e))?
        .len();
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    let mut reader = HashReader::new(file.take(size));
    tar.append_data(&mut h, oci_path(digest), &mut reader)
        .map_err(write_err)?;
    let (actual, n) = reader.finish();
    if n != size {
        return Err(Error::invalid(
            format!("stored blob {}", path.display()),
            format!("{n} bytes read, {size} expected"),
        ));
    }
    if &actual != digest {
        return Err(Error::DigestMismatch {
            what: format!("stored blob {}", path.display()),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}
