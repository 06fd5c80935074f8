//! Kubernetes quantities: CPUs (`500m`, `1.5`, `2`) and bytes (`64Mi`, `1G`, `129e6`).

use serde_yaml::Value;

/// The text of a quantity given as a string or a number.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Split `1.5Gi` into (1.5, 2^30); `129e6` into (129e6, 1).
fn scaled(s: &str) -> Option<f64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    let base: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let v = base * factor;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Bytes (rounded up, as Kubernetes does for fractional bytes).
pub fn bytes(v: &Value) -> Result<i64, String> {
    let s = text(v).ok_or_else(|| "a quantity must be a string or a number".to_string())?;
    let n = scaled(&s).ok_or_else(|| format!("{s:?} is not a quantity of bytes"))?;
    if n > i64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(n.ceil() as i64)
}

/// CPUs (`500m` = 0.5).
pub fn cpus(v: &Value) -> Result<f64, String> {
    let s = text(v).ok_or_else(|| "a quantity must be a string or a number".to_string())?;
    scaled(&s).ok_or_else(|| format!("{s:?} is not a quantity of CPUs"))
}

/// CPUs as Kubernetes writes them: `500m`, `2`.
pub fn cpus_text(c: f64) -> String {
    let milli = (c * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// Bytes as Kubernetes writes them: `64Mi` when exact, else the number.
pub fn bytes_text(b: i64) -> String {
    for (suffix, f) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b >= f && b % f == 0 {
            return format!("{}{suffix}", b / f);
        }
    }
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn quantities() {
        assert_eq!(bytes(&s("64Mi")).unwrap(), 64 << 20);
        assert_eq!(bytes(&s("1G")).unwrap(), 1_000_000_000);
        assert_eq!(bytes(&s("129e6")).unwrap(), 129_000_000);
        assert_eq!(bytes(&s("1.5Ki")).unwrap(), 1536);
        assert_eq!(bytes(&Value::Number(1000.into())).unwrap(), 1000);
        assert!(bytes(&s("lots")).is_err());
        assert!(bytes(&s("-1")).is_err());
        assert!(bytes(&s("1Xi")).is_err());
        assert_eq!(cpus(&s("500m")).unwrap(), 0.5);
        assert_eq!(cpus(&s("2")).unwrap(), 2.0);
        assert_eq!(
            cpus(&Value::Number(serde_yaml::Number::from(1.5))).unwrap(),
            1.5
        );
        assert_eq!(cpus_text(0.5), "500m");
        assert_eq!(cpus_text(2.0), "2");
        assert_eq!(bytes_text(64 << 20), "64Mi");
        assert_eq!(bytes_text(1000), "1000");
    }
}
