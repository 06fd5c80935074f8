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
    let ns = barge_util::time::parse_go_duration(s.trim())?;
    if ns <= 0 {
        return Err(format!("invalid duration {s:?}: must be greater than 0"));
    }
    let ns = ns.unsigned_abs();
    Ok(Duration::new(
        ns / 1_000_000_000,
        (ns % 1_000_000_000) as u32,
    ))
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
