//! docker's reference grammar (github.com/distribution/reference, `ParseNormalizedNamed`),
//! written out by hand: no regex engine to build on every `barge` invocation.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6address ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/
//! algorithm        := /[A-Za-z][A-Za-z0-9]*/ [ /[+.-_]/ /[A-Za-z][A-Za-z0-9]*/ ]*
//! ```
//!
//! Normalisation as docker's: the first `/`-separated part is a domain when it is `localhost`,
//! contains `.` or `:`, or has upper case; otherwise the name is on `docker.io`, where a
//! one-component name gets `library/`. `index.docker.io` is `docker.io`.

use std::borrow::Cow;
use std::fmt;

pub(super) const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
/// The longest name (`domain/path`) accepted.
pub(super) const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A reference split into its normalised parts; tag and digest as written.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Parts<'a> {
    pub domain: &'a str,
    pub path: Cow<'a, str>,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Why a string is not a reference, in docker's words.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Anything the grammar does not produce.
    Format,
    /// Upper case in the repository path (the part after the domain).
    Uppercase(String),
    /// `domain/path` longer than [`NAME_MAX`].
    TooLong,
    /// 64 hex characters: an image ID, not a name.
    Identifier,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Format => f.write_str("invalid reference format"),
            Refused::Uppercase(remote) => write!(
                f,
                "invalid reference format: repository name ({remote}) must be lowercase"
            ),
            Refused::TooLong => write!(
                f,
                "repository name must not be more than {NAME_MAX} characters"
            ),
            Refused::Identifier => {
                f.write_str("invalid repository name, cannot specify 64-byte hexadecimal strings")
            }
        }
    }
}

/// Parse and normalise `s`.
pub(super) fn parse(s: &str) -> Result<Parts<'_>, Refused> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Refused::Identifier);
    }
    let (domain, library, remainder) = split_domain(s);
    let remote = remainder.split(':').next().unwrap_or(remainder);
    if remote.chars().any(char::is_uppercase) {
        let prefix = if library { OFFICIAL_PREFIX } else { "" };
        return Err(Refused::Uppercase(format!("{prefix}{remote}")));
    }
    let (rest, digest) = match remainder.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (remainder, None),
    };
    // The path has no ':' (only a domain may), so the first one starts the tag.
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if !is_domain(domain)
        || !is_path(path)
        || !tag.is_none_or(is_tag)
        || !digest.is_none_or(is_digest)
    {
        return Err(Refused::Format);
    }
    let prefix = if library { OFFICIAL_PREFIX.len() } else { 0 };
    if domain.len() + 1 + prefix + path.len() > NAME_MAX {
        return Err(Refused::TooLong);
    }
    let path = if library {
        Cow::Owned(format!("{OFFICIAL_PREFIX}{path}"))
    } else {
        Cow::Borrowed(path)
    };
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// docker's `splitDockerDomain`: (domain, whether `library/` goes before the rest, the rest).
fn split_domain(s: &str) -> (&str, bool, &str) {
    let Some((first, rest)) = s.split_once('/') else {
        return (DEFAULT_DOMAIN, true, s);
    };
    let domain = if first == "localhost" {
        first
    } else if first == LEGACY_DOMAIN {
        DEFAULT_DOMAIN
    } else if first.contains(['.', ':']) || first.chars().any(char::is_uppercase) {
        first
    } else {
        return (DEFAULT_DOMAIN, false, s);
    };
    let library = domain == DEFAULT_DOMAIN && !rest.contains('/');
    (domain, library, rest)
}

/// `host[:port]`, the host a domain name or a bracketed IPv6 address.
pub(super) fn is_domain(d: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = d.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        match after {
            "" => (ok, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (ok, Some(p)),
                None => return false,
            },
        }
    } else {
        let (host, port) = match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        (host.split('.').all(is_domain_component), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// One or more path components separated by `/`.
fn is_path(p: &str) -> bool {
    p.split('/').all(is_path_component)
}

/// `[a-z0-9]+` runs joined by exactly one of `.`, `_`, `__` or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false; // empty, or a separator at the start, end or next to another
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`.
pub(super) fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && is_word(b[0])
        && b[1..].iter().all(|&x| is_word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`, the hex at least 32 characters (which algorithms barge fetches by is
/// [`crate::digest::Digest`]'s business).
fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['+', '.', '-', '_']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        })
}
