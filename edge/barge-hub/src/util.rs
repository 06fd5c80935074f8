//! Small helpers of this crate.

/// Unix seconds now.
pub fn now_secs() -> i64 {
    barge_util::time::now().0
}

/// Compare two byte strings without an early exit (secrets and their hashes).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A DNS-1123 label (node names, pod names): 1-63 of `a-z0-9-`, alphanumeric at both ends.
pub fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
