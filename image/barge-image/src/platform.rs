//! Platforms (`os/architecture[/variant]`) and the choice of one manifest from an index, as
//! containerd does it: exact matches first, then older compatible ARM variants.

use std::fmt;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => (
                "arm",
                Some(if cfg!(target_feature = "v7") {
                    "v7"
                } else {
                    "v6"
                }),
            ),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
        .normalized()
    }

    /// Parse `--platform` values: `linux/arm64`, `linux/arm/v7`, `arm64` (os linux implied).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            Error::invalid(
                format!("platform {s:?}"),
                "expected os/arch[/variant], e.g. linux/arm/v7",
            )
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let p = match parts.as_slice() {
            [arch] => Platform {
                os: "linux".into(),
                architecture: (*arch).into(),
                variant: None,
            },
            [os, arch] => Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            },
            [os, arch, variant] => Platform {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: Some((*variant).into()),
            },
            _ => return Err(bad()),
        };
        Ok(p.normalized())
    }

    /// containerd's normalisation: lowercase, `aarch64` → `arm64`, `x86_64` → `amd64`, arm
    /// without a variant is v7, arm64 without a variant is v8.
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        self.architecture = match self.architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            "armhf" => {
                self.variant.get_or_insert_with(|| "v7".into());
                "arm".into()
            }
            "armel" => {
                self.variant.get_or_insert_with(|| "v6".into());
                "arm".into()
            }
            "i386" | "i686" => "386".into(),
            other => other.to_string(),
        };
        self.variant = self.variant.map(|v| v.to_ascii_lowercase());
        match self.architecture.as_str() {
            "arm" if self.variant.is_none() => self.variant = Some("v7".into()),
            "arm64" if self.variant.as_deref() == Some("8") => self.variant = Some("v8".into()),
            "arm64" if self.variant.is_none() => self.variant = Some("v8".into()),
            "amd64" if self.variant.as_deref() == Some("v1") => self.variant = None,
            _ => {}
        }
        self
    }

    /// How well `candidate` serves this platform: `Some(0)` exact, `Some(n)` compatible (lower
    /// is better), `None` not runnable.
    pub fn rank(&self, candidate: &Platform) -> Option<u32> {
        let c = candidate.clone().normalized();
        if c.os != self.os || c.architecture != self.architecture {
            return None;
        }
        if c.variant == self.variant {
            return Some(0);
        }
        // An ARM CPU runs code built for older variants of its architecture.
        let level = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.strip_prefix('v'))
                .and_then(|n| n.parse::<u32>().ok())
        };
        match (
            self.architecture.as_str(),
            level(&self.variant),
            level(&c.variant),
        ) {
            ("arm", Some(want), Some(have)) if have < want => Some(want - have),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rank() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(
            Platform::parse("arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux//v7").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let plain = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
        };
        assert_eq!(arm64.rank(&plain), Some(0));
        assert_eq!(p.rank(&Platform::parse("linux/arm/v6").unwrap()), Some(1));
        assert_eq!(p.rank(&Platform::parse("linux/arm/v8").unwrap()), None);
        assert_eq!(p.rank(&arm64), None);
        assert_eq!(Platform::host().rank(&Platform::host()), Some(0));
    }
}
