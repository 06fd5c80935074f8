//! `events`: a container's OOM notifications and usage statistics as runc prints them.
use std::time::Duration;

use barge_runtime::{events, Result, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the container's statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Time between statistics (a duration: 5s, 100ms, 1m30s).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Container id.
    pub id: String,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.stats {
        events::stats_once(store, &a.id)?.write_line(&mut out)?;
    } else {
        events::stream(store, &a.id, a.interval, &mut out)?;
    }
    Ok(0)
}

/// A Go-style duration: a sequence of decimal numbers with units (ns, us, µs, ms, s, m, h),
/// e.g. "5s", "1.5s", "1m30s", "250ms". Must be greater than zero.
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 5s, 100ms, 1m30s");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
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
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut ns = int.checked_mul(scale).ok_or_else(bad)?;
        if !frac.is_empty() {
            let f: u128 = frac.parse().map_err(|_| bad())?;
            ns += f * scale / 10u128.pow(frac.len() as u32);
        }
        total_ns = total_ns.checked_add(ns).ok_or_else(bad)?;
        rest = tail;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| bad())?;
    let d = Duration::new(secs, (total_ns % 1_000_000_000) as u32);
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be greater than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("5s"), Ok(ms(5000)));
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "5", "s", "5x", "-1s", "0s", "1..5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
