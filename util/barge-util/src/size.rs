//! Sizes written the way docker writes them (`--log-opt max-size`, `--memory`, `max-layer-size`).

/// Parse a size in bytes the way docker does (`units.RAMInBytes`): a decimal number, optionally
/// with a fraction, then optionally a unit `k`, `m`, `g`, `t` or `p` (powers of 1024), optionally
/// followed by `i` and/or `b`, case-insensitive: `1024`, `10k`, `10kb`, `10m`, `1g`, `1.5m`,
/// `512MiB`. One space between number and unit is allowed. Fractions of a byte are dropped.
///
/// The error names the value and says what is wrong with it.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid size {s:?}: {why}");
    let number_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(number_len);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let multiplier = unit_multiplier(unit)
        .ok_or_else(|| bad("expected a number with an optional unit k, m, g, t or p"))?;

    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(bad("expected a number such as 10, 10k or 1.5m"));
    }
    let whole: u64 = whole.parse().map_err(|_| bad("the number is too large"))?;
    let mut bytes = whole
        .checked_mul(multiplier)
        .ok_or_else(|| bad("the size is too large"))?;
    if !fraction.is_empty() {
        // At most 18 digits keep the arithmetic in u128 range; later digits are far below a byte.
        let digits = &fraction[..fraction.len().min(18)];
        let numerator: u128 = digits
            .parse()
            .map_err(|_| bad("expected a number such as 10, 10k or 1.5m"))?;
        let scale = 10u128.pow(digits.len() as u32);
        let extra = u64::try_from(numerator * u128::from(multiplier) / scale)
            .map_err(|_| bad("the size is too large"))?;
        bytes = bytes
            .checked_add(extra)
            .ok_or_else(|| bad("the size is too large"))?;
    }
    Ok(bytes)
}

/// The number of bytes a unit suffix stands for: `""`, `b`, `k`, `kb`, `ki`, `kib`, ... .
fn unit_multiplier(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    let mut rest = unit.as_str();
    let mut multiplier = 1u64;
    if let Some(first) = rest.chars().next() {
        let power = match first {
            'k' => 1,
            'm' => 2,
            'g' => 3,
            't' => 4,
            'p' => 5,
            _ => 0,
        };
        if power > 0 {
            multiplier = 1u64 << (10 * power);
            rest = &rest[1..];
            rest = rest.strip_prefix('i').unwrap_or(rest);
        }
    }
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    rest.is_empty().then_some(multiplier)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn accepts_docker_forms() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10k"), Ok(10 * 1024));
        assert_eq!(parse_size("10kb"), Ok(10 * 1024));
        assert_eq!(parse_size("10KB"), Ok(10 * 1024));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1.5m"), Ok(3 << 19));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2 t"), Ok(2 << 40));
        assert_eq!(parse_size("100b"), Ok(100));
        assert_eq!(parse_size("0.5k"), Ok(512));
    }

    #[test]
    fn rejects_bad_values_naming_them() {
        for bad in [
            "",
            "k",
            "ten",
            "10x",
            "10mm",
            "-5m",
            "1.2.3m",
            "1.m",
            ".5m",
            "10 m b",
            "99999999999999999999",
            "20000000p",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// The forms `max-layer-size` in the image config takes (this parser's second user).
    #[test]
    fn max_layer_size_forms() {
        for (s, n) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512k", 512 << 10),
            ("512K", 512 << 10),
            ("10m", 10 << 20),
            ("10mb", 10 << 20),
            ("10MiB", 10 << 20),
            ("1g", 1 << 30),
            ("1.5g", 3 << 29),
            ("2 t", 2 << 40),
            ("100b", 100),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
        for s in [
            "", "m", "10q", "10mm", "-1", "1.2.3m", "1.m", ".5m", "10 m b", "ib", "10i",
        ] {
            let err = parse_size(s).unwrap_err();
            assert!(err.contains(&format!("{s:?}")), "{s}: {err}");
        }
        assert!(parse_size("99999999999p")
            .unwrap_err()
            .contains("too large"));
    }
}
