//! `--security-opt` (and the API's `HostConfig.SecurityOpt`): the seccomp profile and
//! no-new-privileges.

use crate::error::{Error, Result};

/// What the security options ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `unconfined`, or the profile to use: a path, or the profile's JSON as the docker CLI
    /// sends it; None: the default profile.
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
}

/// Parse docker's security options: `seccomp=unconfined|PROFILE`, `no-new-privileges[=true|
/// false]` (also with `:` instead of `=`, as older clients send); `apparmor=…` and `label=…`
/// are accepted and have no effect (barge has neither). Anything else is refused, named.
pub fn parse_security_opts<S: AsRef<str>>(opts: &[S]) -> Result<Security> {
    let mut out = Security::default();
    for o in opts {
        let o = o.as_ref();
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
        match (k, v) {
            ("seccomp", "") => {
                return Err(Error::BadParameter(format!(
                    "--security-opt {o:?}: seccomp needs a value"
                )))
            }
            ("seccomp", p) => out.seccomp = Some(p.to_string()),
            ("no-new-privileges", "" | "true") => out.no_new_privileges = true,
            ("no-new-privileges", "false") => out.no_new_privileges = false,
            ("apparmor" | "label", _) => {}
            _ => {
                return Err(Error::BadParameter(format!(
                    "--security-opt {o:?}: unknown option (seccomp=…, no-new-privileges)"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options() {
        let s = parse_security_opts(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(s.seccomp.as_deref(), Some("unconfined"));
        assert!(s.no_new_privileges);
        let s =
            parse_security_opts(&["no-new-privileges:true", "no-new-privileges=false"]).unwrap();
        assert!(!s.no_new_privileges);
        assert_eq!(
            parse_security_opts(&["apparmor=x"]).unwrap(),
            Security::default()
        );
        let e = parse_security_opts(&["seccomp"]).unwrap_err().to_string();
        assert!(e.contains("needs a value"), "{e}");
        let e = parse_security_opts(&["selinux=on"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"selinux=on\""), "{e}");
    }
}
