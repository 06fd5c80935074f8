//! Sizes written the way docker writes them (`units.RAMInBytes`): a number, optionally with a
//! fraction, then optionally a unit `k`, `m`, `g`, `t` or `p` (powers of 1024) that may be
//! followed by `i` and/or `b`, case-insensitive: `1048576`, `512k`, `10m`, `1.5g`, `1GiB`.

/// Bytes in `s`, or a reason it is not a size.
pub fn parse(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a size: expected bytes or a number with a unit such as 512k, 10m or 1g"
        )
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let (power, rest) = match unit.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let power = "kmgtp".find(c).map_or(0, |i| i as u32 + 1);
            (power, &unit[1..])
        }
        _ => (0, unit.as_str()),
    };
    let rest = if power > 0 {
        rest.strip_prefix('i').unwrap_or(rest)
    } else {
        rest
    };
    if !matches!(rest, "" | "b") {
        return Err(bad());
    }
    let multiplier = 1024u128.pow(power);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.ends_with('.')) {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    // Fractions of a byte are dropped; 18 digits are far below a byte at any unit.
    let digits = &fraction[..fraction.len().min(18)];
    let extra = if digits.is_empty() {
        0
    } else {
        let n: u128 = digits.parse().map_err(|_| bad())?;
        n * multiplier / 10u128.pow(digits.len() as u32)
    };
    whole
        .checked_mul(multiplier)
        .and_then(|b| b.checked_add(extra))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn docker_sizes() {
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
            assert_eq!(parse(s), Ok(n), "{s}");
        }
        for s in [
            "", "m", "10q", "10mm", "-1", "1.2.3m", "1.m", ".5m", "10 m b", "ib", "10i",
        ] {
            let err = parse(s).unwrap_err();
            assert!(err.contains(&format!("{s:?}")), "{s}: {err}");
        }
        assert!(parse("99999999999p").unwrap_err().contains("too large"));
    }
}
