//! RFC 3339 time without a date-time dependency: formatting in UTC the ways docker and the OCI
//! tools write it, and parsing what users and log files give.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as (seconds, nanoseconds) since the epoch, UTC.
pub fn now() -> (i64, u32) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
}

/// The current time with all nine fraction digits ([`rfc3339_nanos`]).
pub fn now_rfc3339() -> String {
    let (secs, nanos) = now();
    rfc3339_nanos(secs, nanos)
}

/// The current time the way docker writes it ([`rfc3339_nano`]).
pub fn now_rfc3339_nano() -> String {
    let (secs, nanos) = now();
    rfc3339_nano(secs, nanos)
}

/// RFC 3339 in UTC with all nine fraction digits (`2026-11-23T09:01:34.000000005Z`), as runc's
/// state and json-file log lines write it: fixed width, so text order is time order.
pub fn rfc3339_nanos(secs: i64, nanos: u32) -> String {
    format!("{}.{nanos:09}Z", date_time(secs))
}

/// RFC 3339 in UTC with the fraction's trailing zeros (and a zero fraction) left out, as docker
/// writes times (Go's `2006-01-02T15:04:05.999999999Z07:00`): `2026-11-23T09:01:34.5Z`,
/// `2026-11-23T09:01:34Z`.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let mut out = date_time(secs);
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// RFC 3339 in UTC to the second (`2026-11-23T09:01:34Z`), as docker writes a volume's
/// `CreatedAt` (Go's `time.RFC3339`).
pub fn rfc3339_secs(secs: i64) -> String {
    format!("{}Z", date_time(secs))
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch, UTC.
fn date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm: (year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse a point in time as (seconds, nanoseconds) since the Unix epoch, UTC.
///
/// Accepts RFC 3339 (`2016-10-06T00:17:09Z`, `2016-10-06T00:17:09.669794202Z`,
/// `2016-10-06T02:17:09+02:00`; any number of fractional digits, nanoseconds kept) and plain Unix
/// seconds with an optional fraction (`1700000000`, `1700000000.5`). Anything else is `None`.
pub fn parse_timestamp(s: &str) -> Option<(i64, u32)> {
    parse_rfc3339(s).or_else(|| parse_unix(s))
}

/// Parse an RFC 3339 timestamp (`T` or `t` between date and time, optional fraction, `Z`, `z`
/// or a `±hh:mm` offset) as (seconds, nanoseconds) since the epoch, UTC.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        nanos = fraction_nanos(&fraction[..len]);
        rest = &fraction[len..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((secs, nanos))
}

/// Parse Unix seconds with an optional fraction: `1700000000`, `1700000000.5`.
fn parse_unix(s: &str) -> Option<(i64, u32)> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    if s.contains('.') && fraction.is_empty() {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    Some((secs, fraction_nanos(fraction.as_bytes())))
}

/// The value of ASCII digits (all of them must be digits).
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

/// Nanoseconds from the digits after the decimal point (beyond 9 digits they are dropped).
fn fraction_nanos(fraction: &[u8]) -> u32 {
    (0..9).fold(0u32, |n, i| {
        let digit = fraction.get(i).map_or(0, |c| u32::from(c - b'0'));
        n * 10 + digit
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's days-from-civil algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a Go duration (`30s`, `1m30s`, `1.5s`, `500ms`, `-2s`, `0`) into nanoseconds, as
/// docker's duration flags take it: decimal numbers each with a unit (ns, us, µs, ms, s, m,
/// h), an optional sign in front.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 30s, 1m30s, 500ms");
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(bad());
    }
    let mut rest = body;
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 18 {
            return Err(bad());
        }
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac_ns = if frac.is_empty() {
            0
        } else {
            let digits: i128 = frac.parse().map_err(|_| bad())?;
            digits * scale / 10i128.pow(frac.len() as u32)
        };
        total = total
            .checked_add(int.checked_mul(scale).ok_or_else(bad)?)
            .and_then(|t| t.checked_add(frac_ns))
            .ok_or_else(bad)?;
        rest = tail;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        use super::parse_go_duration as p;
        assert_eq!(p("30s"), Ok(30_000_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000_000));
        assert_eq!(p("500ms"), Ok(500_000_000));
        assert_eq!(p("-2s"), Ok(-2_000_000_000));
        assert_eq!(p("0"), Ok(0));
        for b in ["", "5", "s", "5x", "1..2s", "abc", "-"] {
            assert!(p(b).is_err(), "{b}");
        }
    }

    use super::*;

    #[test]
    fn parses_rfc3339_utc() {
        assert_eq!(
            parse_timestamp("2016-10-06T00:17:09.669794202Z"),
            Some((1_475_713_029, 669_794_202))
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_timestamp("2016-10-06t00:17:09.5z"),
            Some((1_475_713_029, 500_000_000))
        );
        assert_eq!(
            parse_timestamp("2016-10-06T00:17:09.1234567891Z"),
            Some((1_475_713_029, 123_456_789))
        );
    }

    #[test]
    fn parses_offsets() {
        assert_eq!(
            parse_timestamp("2016-10-06T02:17:09+02:00"),
            Some((1_475_713_029, 0))
        );
        assert_eq!(
            parse_timestamp("2016-10-05T19:47:09.25-04:30"),
            Some((1_475_713_029, 250_000_000))
        );
    }

    #[test]
    fn parses_unix_seconds() {
        assert_eq!(parse_timestamp("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_timestamp("1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_timestamp("0.000000001"), Some((0, 1)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "10m",
            "1700000000.",
            ".5",
            "-1",
            "1.2.3",
            "2016-10-06",
            "2016-10-06T00:17:09",
            "2016-10-06T00:17:09.Z",
            "2016-13-06T00:17:09Z",
            "2015-02-29T00:00:00Z",
            "2016-10-06T24:00:00Z",
            "2016-10-06T00:17:09+2:00",
            "2016-10-06T00:17:09Zjunk",
            "2016-10-06 00:17:09Z",
            "99999999999999999999",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_with_the_formatter() {
        for (secs, nanos) in [
            (0, 0),
            (951_782_400, 1),
            (1_795_424_494, 999_999_999),
            (-1, 5),
        ] {
            assert_eq!(
                parse_rfc3339(&rfc3339_nanos(secs, nanos)),
                Some((secs, nanos))
            );
        }
    }
    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_nanos(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_795_424_494, 5),
            "2026-11-23T09:01:34.000000005Z"
        );
        assert_eq!(
            rfc3339_nanos(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339_nanos(-1, 0), "1969-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn docker_nano_form_drops_trailing_zeros() {
        assert_eq!(rfc3339_nano(1_795_424_494, 0), "2026-11-23T09:01:34Z");
        assert_eq!(
            rfc3339_nano(1_795_424_494, 500_000_000),
            "2026-11-23T09:01:34.5Z"
        );
        assert_eq!(
            rfc3339_nano(1_795_424_494, 123_456_789),
            "2026-11-23T09:01:34.123456789Z"
        );
        assert_eq!(rfc3339_nano(0, 1_000), "1970-01-01T00:00:00.000001Z");
        for nanos in [0, 1, 10, 500_000_000, 999_999_999] {
            assert_eq!(
                parse_rfc3339(&rfc3339_nano(1_795_424_494, nanos)),
                Some((1_795_424_494, nanos))
            );
        }
    }

    #[test]
    fn seconds_form() {
        assert_eq!(rfc3339_secs(1_795_424_494), "2026-11-23T09:01:34Z");
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn now_is_parsed_back() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2025-06-01T09:01:34.123456789Z".len(), "{t}");
        let (secs, _) = parse_rfc3339(&t).unwrap();
        assert!((secs - now().0).abs() < 5, "{t}");
    }
}
