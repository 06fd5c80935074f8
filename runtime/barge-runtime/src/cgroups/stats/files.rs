//! Reading and parsing cgroup interface files: one number, flat-keyed files, number and
//! cpu lists, pressure (PSI) files. A missing file reads as `None`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::Psi;
use crate::error::{at, Error, Result};

/// A file's content; `None` if it does not exist (controller or feature absent, cgroup gone).
pub(super) fn text(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENODEV) =>
        {
            Ok(None)
        }
        Err(source) => Err(Error::Io {
            context: at("read", &path),
            source,
        }),
    }
}

pub(super) fn malformed(dir: &Path, file: &str, what: &str) -> Error {
    Error::Container(format!(
        "{}: unexpected content {what:?}",
        dir.join(file).display()
    ))
}

pub(super) fn parse_u64(dir: &Path, file: &str, s: &str) -> Result<u64> {
    match s {
        "max" => Ok(u64::MAX),
        _ => s.parse().map_err(|_| malformed(dir, file, s)),
    }
}

/// A file holding one number ("max" reads as u64::MAX); `None` if it does not exist.
pub(super) fn num(dir: &Path, file: &str) -> Result<Option<u64>> {
    text(dir, file)?
        .map(|t| parse_u64(dir, file, t.trim()))
        .transpose()
}

/// A flat-keyed file (`key value` per line: memory.stat, cpu.stat, memory.events...). Lines
/// that are not `word number` are skipped.
pub(super) fn keyed(dir: &Path, file: &str) -> Result<Option<BTreeMap<String, u64>>> {
    Ok(text(dir, file)?.map(|t| {
        t.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (k, v) = (f.next()?, f.next()?);
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }))
}

/// Whitespace-separated numbers (cpuacct.usage_percpu).
pub(super) fn numbers(dir: &Path, file: &str) -> Result<Option<Vec<u64>>> {
    text(dir, file)?
        .map(|t| {
            t.split_whitespace()
                .map(|w| parse_u64(dir, file, w))
                .collect()
        })
        .transpose()
}

/// A cgroup v2 `*.pressure` file.
pub(super) fn psi(dir: &Path, file: &str) -> Result<Option<Psi>> {
    let Some(t) = text(dir, file)? else {
        return Ok(None);
    };
    let mut out = Psi::default();
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let data = match f.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let bad = || malformed(dir, file, kv);
            match k {
                "avg10" => data.avg10 = v.parse().map_err(|_| bad())?,
                "avg60" => data.avg60 = v.parse().map_err(|_| bad())?,
                "avg300" => data.avg300 = v.parse().map_err(|_| bad())?,
                "total" => data.total = v.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
    }
    Ok(Some(out))
}

/// A cpu/node list such as "0-3,8,10-11".
fn parse_list(dir: &Path, file: &str, s: &str) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n = |x: &str| x.trim().parse::<u16>().map_err(|_| malformed(dir, file, s));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (n(a)?, n(b)?);
                if b < a {
                    return Err(malformed(dir, file, s));
                }
                out.extend(a..=b);
            }
            None => out.push(n(part)?),
        }
    }
    Ok(out)
}

pub(super) fn list(dir: &Path, file: &str) -> Result<Option<Vec<u16>>> {
    text(dir, file)?
        .map(|t| parse_list(dir, file, t.trim()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        let d = Path::new("/x");
        assert_eq!(parse_list(d, "f", "").unwrap(), Vec::<u16>::new());
        assert_eq!(parse_list(d, "f", "3").unwrap(), [3]);
        assert_eq!(parse_list(d, "f", "0-1,4-5,7").unwrap(), [0, 1, 4, 5, 7]);
        assert!(parse_list(d, "f", "5-1").is_err());
        assert!(parse_list(d, "f", "a").is_err());
    }
}
