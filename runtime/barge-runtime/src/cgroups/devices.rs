//! The device allow/deny list: `linux.resources.devices` checked and completed with the
//! devices every container needs, then written to the v1 `devices` controller (v2 hosts get an
//! eBPF program from the same rules, see `bpf`).
//!
//! Semantics, as runc's: the list starts from "deny everything", rules apply in order and the
//! last rule matching a device and access decides. The devices in `linux.devices` and a
//! standard set (/dev/null, zero, full, random, urandom, tty, ptmx, pts, and `mknod` of any
//! device) are allowed after the configured rules.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Context, Error, Result};

/// Access bits, numbered as the kernel's BPF_DEVCG_ACC_* flags.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Which kind of device a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Character and block devices.
    All,
    Char,
    Block,
}

/// One checked device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` is the wildcard `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits, never 0.
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: u32, minor: Option<u32>) -> Self {
        Rule {
            allow: true,
            kind: Kind::Char,
            major: Some(major),
            minor,
            access: ACC_ALL,
        }
    }

    /// Whether this rule resets the whole list ("a *:* rwm"): allow-all or deny-all.
    pub fn is_reset(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }

    /// The v1 controller's syntax: `c 1:3 rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{kind} {}:{} {}",
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

/// `rwm`-style text of access bits.
pub fn access_string(access: u8) -> String {
    let mut s = String::new();
    if access & ACC_READ != 0 {
        s.push('r');
    }
    if access & ACC_WRITE != 0 {
        s.push('w');
    }
    if access & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// Devices every container may use (as runc allows them), after the configured rules.
const DEFAULT_ALLOWED: [Rule; 10] = [
    // mknod of any character or block device (using it still needs an allow rule).
    Rule {
        allow: true,
        kind: Kind::Char,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule {
        allow: true,
        kind: Kind::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::allow_char(1, Some(3)), // /dev/null
    Rule::allow_char(1, Some(5)), // /dev/zero
    Rule::allow_char(1, Some(7)), // /dev/full
    Rule::allow_char(1, Some(8)), // /dev/random
    Rule::allow_char(1, Some(9)), // /dev/urandom
    Rule::allow_char(5, Some(0)), // /dev/tty
    Rule::allow_char(5, Some(2)), // /dev/ptmx
    Rule::allow_char(136, None),  // /dev/pts/*
];

/// The complete rule list for a container: deny-all, the configured rules in order, then the
/// devices of `linux.devices` and the standard devices. Bad rules are refused with the index
/// and field that is wrong.
pub fn rules(configured: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<Vec<Rule>> {
    let mut out = vec![Rule {
        allow: false,
        kind: Kind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    }];
    for (i, d) in configured.iter().enumerate() {
        out.push(rule(i, d)?);
    }
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            // FIFOs are not device-controlled; `a` is not a node type.
            LinuxDeviceType::P | LinuxDeviceType::A => continue,
        };
        let field = |what: &str| format!("linux.devices[{i}].{what}");
        out.push(Rule {
            allow: true,
            kind,
            major: Some(number(&field("major"), Some(d.major()))?.unwrap_or(0)),
            minor: Some(number(&field("minor"), Some(d.minor()))?.unwrap_or(0)),
            access: ACC_ALL,
        });
    }
    out.extend(DEFAULT_ALLOWED);
    Ok(out)
}

fn rule(i: usize, d: &LinuxDeviceCgroup) -> Result<Rule> {
    let field = |what: &str| format!("linux.resources.devices[{i}].{what}");
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => Kind::All,
        Some(LinuxDeviceType::C) => Kind::Char,
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(t @ (LinuxDeviceType::U | LinuxDeviceType::P)) => {
            return Err(Error::Config(format!(
                "{}: device type {:?} cannot be used in a cgroup rule (use a, b or c)",
                field("type"),
                t.as_str()
            )))
        }
    };
    let access = match d.access().as_deref() {
        None | Some("") => ACC_ALL,
        Some(s) => parse_access(s).ok_or_else(|| {
            Error::Config(format!(
                "{}: {s:?} is not an access string (letters r, w, m)",
                field("access")
            ))
        })?,
    };
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: number(&field("major"), d.major())?,
        minor: number(&field("minor"), d.minor())?,
        access,
    })
}

/// A device number: absent or -1 is the wildcard; other negatives and values above u32 are
/// refused.
fn number(field: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            Error::Config(format!(
                "{field}: {n} is not a device number (0..=4294967295, or -1 for any)"
            ))
        }),
    }
}

fn parse_access(s: &str) -> Option<u8> {
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    Some(bits)
}

/// Write the rules to a v1 `devices` cgroup directory, in order, from the last reset rule on
/// (a reset clears everything written before it).
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    let from = rules.iter().rposition(Rule::is_reset).unwrap_or(0);
    for r in &rules[from..] {
        let file = dir.join(if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        let line = r.v1_line();
        fs::write(&file, &line).ctx(|| format!("write {line:?} to {}", file.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rules_start_denied_and_end_with_the_standard_devices() {
        let r = rules(
            &[cg(
                r#"{"allow":true,"type":"b","major":8,"minor":0,"access":"r"}"#,
            )],
            &[],
        )
        .unwrap();
        assert_eq!(r[0].v1_line(), "a *:* rwm");
        assert!(!r[0].allow);
        assert_eq!(r[1].v1_line(), "b 8:0 r");
        assert!(r.iter().any(|x| x.v1_line() == "c 1:3 rwm" && x.allow));
        assert!(r.iter().any(|x| x.v1_line() == "c 136:* rwm" && x.allow));
        assert_eq!(r.len(), 2 + DEFAULT_ALLOWED.len());
    }

    #[test]
    fn config_devices_are_allowed() {
        let dev: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229}"#)
                .unwrap();
        let r = rules(&[], &[dev]).unwrap();
        assert!(r.iter().any(|x| x.v1_line() == "c 10:229 rwm" && x.allow));
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = rules(&[cg(r#"{"allow":true,"type":"p"}"#)], &[]).unwrap_err();
        assert!(e.to_string().contains("devices[0].type"), "{e}");
        let e = rules(&[cg(r#"{"allow":true,"type":"c","major":-5}"#)], &[]).unwrap_err();
        assert!(e.to_string().contains("devices[0].major"), "{e}");
        let e = rules(&[cg(r#"{"allow":true,"access":"rx"}"#)], &[]).unwrap_err();
        assert!(e.to_string().contains("devices[0].access"), "{e}");
        let e = rules(&[cg(r#"{"allow":true,"minor":4294967296}"#)], &[]).unwrap_err();
        assert!(e.to_string().contains("devices[0].minor"), "{e}");
    }

    #[test]
    fn v1_files_receive_rules_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["devices.allow", "devices.deny"] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let r = rules(
            &[cg(
                r#"{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}"#,
            )],
            &[],
        )
        .unwrap();
        apply_v1(dir.path(), &r[..2]).unwrap();
        // A regular file keeps only the last write; the kernel's file takes each line.
        assert_eq!(
            fs::read_to_string(dir.path().join("devices.deny")).unwrap(),
            "c 1:3 w"
        );
    }
}
