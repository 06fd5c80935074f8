//! Image references (`NAME[:TAG|@DIGEST]`) with docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`. Parsing is oci-spec's; this adds the names barge stores
//! and shows.

use oci_spec::distribution::Reference;

use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parse a user-given reference; a reference with neither tag nor digest means `:latest`.
    pub fn parse(s: &str) -> Result<ImageRef> {
        let inner: Reference = s
            .parse()
            .map_err(|e| Error::invalid(format!("image reference {s:?}"), format!("{e}")))?;
        if let Some(d) = inner.digest() {
            Digest::parse(d)?;
        }
        Ok(ImageRef { inner })
    }

    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.inner.digest().and_then(|d| Digest::parse(d).ok())
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The name stored in the image table: `registry/repo:tag`, or `registry/repo@digest` for
    /// a reference by digest (docker keeps the digest when both are given).
    pub fn canonical(&self) -> String {
        match (self.inner.digest(), self.tag()) {
            (Some(d), _) => format!("{}@{d}", self.repo_name()),
            (None, Some(t)) => format!("{}:{t}", self.repo_name()),
            (None, None) => format!("{}:latest", self.repo_name()),
        }
    }

    /// The same reference pointing at `digest` (to fetch a child manifest of an index).
    pub fn with_digest(&self, digest: &Digest) -> ImageRef {
        ImageRef {
            inner: self.inner.clone_with_digest(digest.to_string()),
        }
    }

    pub fn oci(&self) -> &Reference {
        &self.inner
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/busybox:latest");
        assert_eq!(familiar(&r.repo_name()), "busybox");
        let r = ImageRef::parse("127.0.0.1:5000/x/y:1.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.canonical(), "127.0.0.1:5000/x/y:1.0");
        assert_eq!(
            split_stored(&r.canonical()),
            ("127.0.0.1:5000/x/y", "1.0", None)
        );
        assert_eq!(
            split_stored("127.0.0.1:5000/x/y"),
            ("127.0.0.1:5000/x/y", "latest", None)
        );
        let d = Digest::of(b"x");
        let r = ImageRef::parse(&format!("localhost:5000/a@{d}")).unwrap();
        assert_eq!(r.digest(), Some(d.clone()));
        assert_eq!(r.canonical(), format!("localhost:5000/a@{d}"));
        assert!(ImageRef::parse("busybox/UPPER").is_err());
        assert!(ImageRef::parse("a@sha256:short").is_err());
    }

    #[test]
    fn loopback_registries() {
        for r in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback_registry(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "example.com:5000",
        ] {
            assert!(!is_loopback_registry(r), "{r}");
        }
    }
}
