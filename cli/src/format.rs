//! Human output: sizes and ages as docker prints them, errors with their causes.

/// docker's sizes: decimal units, three significant digits ("4.26MB", "512B").
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, trailing zeros dropped (Go's %.3g, which docker uses).
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", UNITS[unit])
}

/// "3 days ago", as docker's CREATED column.
pub fn ago(unix: i64, now: i64) -> String {
    let d = (now - unix).max(0);
    let (n, unit) = match d {
        0..=59 => return "Less than a minute ago".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86399 => (d / 3600, "hour"),
        86400..=1_209_599 => (d / 86400, "day"),
        1_209_600..=5_183_999 => (d / 604_800, "week"),
        5_184_000..=63_071_999 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    barge_image::meta::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages() {
        assert_eq!(size(512), "512B");
        assert_eq!(size(4_260_000), "4.26MB");
        assert_eq!(size(42_600_000), "42.6MB");
        assert_eq!(size(426_000_000), "426MB");
        assert_eq!(size(7_500_000), "7.5MB");
        assert_eq!(ago(0, 30), "Less than a minute ago");
        assert_eq!(ago(0, 3600), "An hour ago");
        assert_eq!(ago(0, 3 * 86400), "3 days ago");
    }
}
