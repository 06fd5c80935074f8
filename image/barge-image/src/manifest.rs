//! Manifests as registries and archives serve them: OCI image manifest and index, Docker v2
//! schema 2 manifest and manifest list (the same JSON shapes with other media types).

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::unpack::Compression;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// What a registry is asked for (Accept), in order of preference.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

#[derive(Debug)]
pub enum Parsed {
    Manifest(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

/// Parse manifest bytes. The `mediaType` field decides, then the HTTP Content-Type, then the
/// shape (an index has `manifests`).
pub fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Parsed> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("manifest {what}"), format!("not JSON: {e}")))?;
    let field = value.get("mediaType").and_then(|m| m.as_str());
    let media = field.or(content_type.map(|c| c.split(';').next().unwrap_or(c).trim()));
    if media.is_some_and(|m| DOCKER_SCHEMA1.contains(&m))
        || value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
    {
        return Err(Error::invalid(
            format!("manifest {what}"),
            "Docker schema 1 manifests are not supported (deprecated by docker in 2019); push the image again with a current tool",
        ));
    }
    let is_index = match media {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
        _ => value.get("manifests").is_some(),
    };
    if is_index {
        let index: ImageIndex = serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("image index {what}"), e.to_string()))?;
        Ok(Parsed::Index(Box::new(index)))
    } else {
        let manifest: ImageManifest = serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("image manifest {what}"), e.to_string()))?;
        for layer in manifest.layers() {
            let mt = layer.media_type().to_string();
            // Foreign layers (Windows base layers) are fetched from elsewhere and can't run here.
            if mt.contains(".foreign.") || Compression::from_media_type(&mt).is_none() {
                return Err(Error::invalid(
                    format!("image manifest {what}"),
                    format!("layer {} has unsupported media type {mt:?}", layer.digest()),
                ));
            }
        }
        Ok(Parsed::Manifest(Box::new(manifest)))
    }
}

/// Parse an image config and its layers' diffIDs (`what` names it in errors).
pub fn parse_config(
    bytes: &[u8],
    what: &str,
) -> Result<(oci_spec::image::ImageConfiguration, Vec<Digest>)> {
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("image config {what}"), e.to_string()))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, diff_ids))
}

/// The descriptor's digest, validated.
pub fn digest_of(desc: &Descriptor) -> Result<Digest> {
    Digest::parse(desc.digest().as_ref())
}

pub fn platform_of(desc: &Descriptor) -> Option<Platform> {
    desc.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

/// The manifest of `index` best suited to `want` (exact platform first, then compatible).
pub fn select<'a>(index: &'a ImageIndex, want: &Platform, what: &str) -> Result<&'a Descriptor> {
    let best = index
        .manifests()
        .iter()
        .filter_map(|d| Some((want.rank(&platform_of(d)?)?, d)))
        .min_by_key(|(rank, _)| *rank);
    match best {
        Some((_, d)) => Ok(d),
        None => {
            let have: Vec<String> = index
                .manifests()
                .iter()
                .filter_map(platform_of)
                .map(|p| p.to_string())
                .collect();
            Err(Error::NotFound {
                what: "platform",
                name: format!("{want} in {what} (it has: {})", have.join(", ")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"architecture":"amd64","os":"linux"}},
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"architecture":"arm","os":"linux","variant":"v6"}},
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"architecture":"arm64","os":"linux"}}]}"#;

    #[test]
    fn selects_platforms() {
        let Parsed::Index(index) = parse(INDEX.as_bytes(), None, "t").unwrap() else {
            panic!("not an index")
        };
        let pick = |p: &str| {
            select(&index, &Platform::parse(p).unwrap(), "t").map(|d| d.digest().to_string())
        };
        assert!(pick("linux/amd64").unwrap().starts_with("sha256:1111"));
        assert!(pick("linux/arm64").unwrap().starts_with("sha256:3333"));
        assert!(
            pick("linux/arm/v7").unwrap().starts_with("sha256:2222"),
            "v7 runs v6"
        );
        let err = pick("linux/riscv64").unwrap_err().to_string();
        assert!(
            err.contains("linux/amd64") && err.contains("riscv64"),
            "{err}"
        );
    }

    #[test]
    fn refuses_schema1_and_foreign_layers() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(parse(s1, None, "t")
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
        let foreign = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"}]}"#;
        let err = parse(foreign.as_bytes(), None, "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported media type"), "{err}");
    }
}
