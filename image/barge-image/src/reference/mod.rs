//! Image references (`NAME[:TAG|@DIGEST]`) with docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`. The one parser every path uses (CLI, engine, store,
//! archives, pull): docker's grammar written out by hand in [`grammar`], no regex engine.

mod grammar;
#[cfg(test)]
mod tests;

use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    registry: String,
    repository: String,
    /// `latest` when neither a tag nor a digest was given.
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parse a user-given reference; a reference with neither tag nor digest means `:latest`.
    pub fn parse(s: &str) -> Result<ImageRef> {
        let parts = grammar::parse(s)
            .map_err(|e| Error::invalid(format!("image reference {s:?}"), e.to_string()))?;
        let digest = parts.digest.map(Digest::parse).transpose()?;
        let tag = match (parts.tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry: parts.domain.to_string(),
            repository: parts.path.into_owned(),
            tag,
            digest,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest.clone()
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name stored in the image table: `registry/repo:tag`, or `registry/repo@digest` for
    /// a reference by digest (docker keeps the digest when both are given).
    pub fn canonical(&self) -> String {
        match (&self.digest, self.tag()) {
            (Some(d), _) => format!("{}@{d}", self.repo_name()),
            (None, Some(t)) => format!("{}:{t}", self.repo_name()),
            (None, None) => format!("{}:latest", self.repo_name()),
        }
    }

    /// The same reference pointing at `digest` (to fetch a child manifest of an index).
    pub fn with_digest(&self, digest: &Digest) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// The reference as oci-client takes it, built from the parts (oci-client's own parser
    /// is oci-spec's regex, never used here). A digest, when there is one, is what is fetched.
    pub fn oci(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.digest, &self.tag) {
            (Some(d), _) => oci_client::Reference::with_digest(registry, repository, d.to_string()),
            (None, t) => oci_client::Reference::with_tag(
                registry,
                repository,
                t.clone().unwrap_or_else(|| "latest".to_string()),
            ),
        }
    }
}

/// The short name docker shows: `docker.io/library/busybox` → `busybox`,
/// `docker.io/foo/bar` → `foo/bar`; other registries keep theirs.
pub fn familiar(repo_name: &str) -> &str {
    repo_name
        .strip_prefix("docker.io/library/")
        .or_else(|| repo_name.strip_prefix("docker.io/"))
        .unwrap_or(repo_name)
}

/// Split a stored name into (repository, tag-or-"<none>", digest).
pub fn split_stored(name: &str) -> (&str, &str, Option<&str>) {
    if let Some((repo, digest)) = name.split_once('@') {
        return (repo, "<none>", Some(digest));
    }
    // The tag is after the last ':' that follows the last '/' (a registry port has a '/' after it).
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..], None),
        None => (name, "latest", None),
    }
}

/// Whether plain HTTP is allowed for `registry` without configuration: loopback addresses, as
/// docker allows (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    if host == "localhost" {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}
