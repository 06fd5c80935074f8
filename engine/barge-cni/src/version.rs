//! CNI spec versions: which ones this client speaks, and comparing them.

use std::cmp::Ordering;

/// The spec versions this client can drive, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A parsed `major.minor.patch` spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion(pub u32, pub u32, pub u32);

impl SpecVersion {
    /// The first version with CHECK and with prevResult on DEL.
    pub const V0_4_0: SpecVersion = SpecVersion(0, 4, 0);
    /// The first version with STATUS and GC.
    pub const V1_1_0: SpecVersion = SpecVersion(1, 1, 0);

    /// Parses `"1.0.0"`; `None` for anything that is not three dot-separated numbers.
    pub fn parse(s: &str) -> Option<SpecVersion> {
        let mut parts = s.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(SpecVersion(major, minor, patch))
    }
}

/// Whether `version` is one of [`SUPPORTED_VERSIONS`].
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// Compares two version strings; unparsable versions sort before every valid one.
pub fn compare(a: &str, b: &str) -> Ordering {
    SpecVersion::parse(a).cmp(&SpecVersion::parse(b))
}

/// Whether `version` is at least `min` (false when `version` does not parse).
pub fn at_least(version: &str, min: SpecVersion) -> bool {
    SpecVersion::parse(version).is_some_and(|v| v >= min)
}

/// The highest of `candidates` that this client supports.
pub fn highest_supported<'a>(candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|v| is_supported(v))
        .max_by(|a, b| compare(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!(SpecVersion::parse("1.0.0"), Some(SpecVersion(1, 0, 0)));
        assert_eq!(SpecVersion::parse("1.0"), None);
        assert_eq!(SpecVersion::parse("1.0.0.0"), None);
        assert_eq!(SpecVersion::parse("a.b.c"), None);
        assert_eq!(compare("0.10.0", "0.4.0"), Ordering::Greater);
        assert!(at_least("1.0.0", SpecVersion::V0_4_0));
        assert!(!at_least("0.3.1", SpecVersion::V0_4_0));
        assert!(!at_least("garbage", SpecVersion::V0_4_0));
        assert_eq!(
            highest_supported(["0.3.1", "1.1.0", "2.0.0", "1.0.0"]),
            Some("1.1.0")
        );
        assert_eq!(highest_supported(["0.2.0", "9.9.9"]), None);
    }
}
