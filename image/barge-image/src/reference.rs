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

/// The stored name of a plain `[host/]path[:tag]` reference, without oci-spec's regex-based
/// parser (which costs tens of milliseconds to build on first use: too slow for every
/// `barge run`). `None` for anything unusual (digests, upper case, odd characters): the caller
/// then uses [`ImageRef::parse`]. Where it answers, it answers as `parse(..).canonical()`.
pub fn fast_canonical(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 255 || s.contains('@') {
        return None;
    }
    let (path, tag) = match s.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (s, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && t.as_bytes()[0] != b'.'
            && t.as_bytes()[0] != b'-';
        if !ok {
            return None;
        }
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    let first = parts[0];
    let has_host = parts.len() > 1
        && (first.contains('.')
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    if has_host {
        // A host (possibly with a port — but then the `:` was taken as a tag separator
        // above only if no `/` follows, so it is not here): leave it to the full parser
        // unless it is a plain lower-case host.
        if !first
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        {
            return None;
        }
    }
    let host = if has_host {
        parts.remove(0)
    } else {
        "docker.io"
    };
    // Path components: lower-case alphanumerics separated by `.`, `_`, `__` or `-`.
    for c in &parts {
        let b = c.as_bytes();
        let ok = !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(x))
            && !c.contains("..");
        if !ok {
            return None;
        }
    }
    let mut repo = parts.join("/");
    if host == "docker.io" && parts.len() == 1 {
        repo = format!("library/{repo}");
    }
    Some(format!("{host}/{repo}:{}", tag.unwrap_or("latest")))
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
    fn fast_canonical_agrees_with_the_parser() {
        for s in [
            "busybox",
            "busybox:1.36",
            "library/busybox:latest",
            "foo/bar",
            "foo/bar-baz_x.y:v1.2-rc",
            "quay.io/org/app:1",
            "localhost/x",
            "registry.example.com/a/b/c:tag",
            "docker.io/library/busybox",
            "a__b/c",
        ] {
            let fast = fast_canonical(s);
            let slow = ImageRef::parse(s).unwrap().canonical();
            assert_eq!(fast.as_deref(), Some(slow.as_str()), "{s}");
        }
        for s in [
            "Busybox",
            "x@sha256:00",
            "127.0.0.1:5000/x",
            "a/-b",
            "x:",
            "x:.t",
            "",
        ] {
            assert_eq!(fast_canonical(s), None, "{s}");
        }
    }

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
