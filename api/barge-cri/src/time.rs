//! Times as CRI wants them: nanoseconds since the epoch.

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    barge_engine::events::now_nanos()
}

/// An RFC 3339 time (`2024-01-02T03:04:05.123456789Z`, as the engine records them) in
/// nanoseconds since the epoch; 0 when absent or unreadable.
pub fn rfc3339_nanos(s: Option<&str>) -> i64 {
    let Some(s) = s else { return 0 };
    let Some(secs) = barge_engine::docker::time::parse_rfc3339(s) else {
        return 0;
    };
    if secs <= 0 {
        return 0;
    }
    // The fraction, if any, between the seconds' '.' and the zone.
    let frac = s
        .split_once('.')
        .map(|(_, rest)| {
            rest.bytes()
                .take_while(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect::<Vec<u8>>()
        })
        .unwrap_or_default();
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + i64::from(frac.get(i).copied().unwrap_or(0));
    }
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(
            super::rfc3339_nanos(Some("1970-01-01T00:00:02.5Z")),
            2_500_000_000
        );
        assert_eq!(super::rfc3339_nanos(None), 0);
        assert_eq!(super::rfc3339_nanos(Some("junk")), 0);
    }
}
