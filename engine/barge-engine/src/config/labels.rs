//! `--label` and `--label-file` (and the API's `Labels` map): metadata of containers, volumes,
//! networks.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// `KEY=VALUE` (or `KEY`, an empty value) flags into a map; an empty key is refused.
pub fn parse_labels<S: AsRef<str>>(flag: &str, items: &[S]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in items {
        let l = l.as_ref();
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(Error::BadParameter(format!(
                "{flag} {l:?}: expected KEY=VALUE"
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// The lines of a `--label-file`: `KEY=VALUE` lines, `#` comments and blank lines skipped.
pub fn read_label_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        what: "read label file",
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Labels from `--label-file`s, then `--label` flags (which win).
pub fn labels_from_args<S: AsRef<str>>(
    files: &[impl AsRef<Path>],
    labels: &[S],
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for f in files {
        let lines = read_label_file(f.as_ref())?;
        out.extend(parse_labels(
            &format!("--label-file {}", f.as_ref().display()),
            &lines,
        )?);
    }
    out.extend(parse_labels("--label", labels)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_flags_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("labels");
        std::fs::write(&f, "# team\na=1\n\nb\nc=from-file\n").unwrap();
        let m = labels_from_args(&[&f], &["c=flag", "d=x=y"]).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "");
        assert_eq!(m["c"], "flag");
        assert_eq!(m["d"], "x=y");
        let e = parse_labels("--label", &["=v"]).unwrap_err().to_string();
        assert!(e.contains("--label \"=v\""), "{e}");
        assert!(labels_from_args(&[dir.path().join("none")], &[] as &[&str]).is_err());
    }
}
