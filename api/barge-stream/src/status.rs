//! The status an exec or attach session ends with, as kubelet writes it on the error stream:
//! a `metav1.Status` JSON document (protocol v4 and later) or, before v4, the error's text
//! (nothing on success).

use serde_json::json;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The process exited with this code.
    Exited(i32),
    /// The session failed for another reason.
    Failed(String),
}

/// The `metav1.Status` document for `st` (kubelet's: `Success`, or `Failure` with reason
/// `NonZeroExitCode` and the code as an `ExitCode` cause; `InternalError` otherwise).
pub fn exit_status(st: &ExitStatus) -> serde_json::Value {
    match st {
        ExitStatus::Exited(0) => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
        }),
        ExitStatus::Exited(code) => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {
                "causes": [{ "reason": "ExitCode", "message": code.to_string() }],
            },
        }),
        ExitStatus::Failed(msg) => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": msg,
            "reason": "InternalError",
            "details": { "causes": [{ "message": msg }] },
            "code": 500,
        }),
    }
}

/// What goes on the error stream for protocol `version` (1..=5): `None` for nothing.
pub(crate) fn error_stream_bytes(version: u8, st: &ExitStatus) -> Option<Vec<u8>> {
    if version >= 4 {
        return serde_json::to_vec(&exit_status(st)).ok();
    }
    match st {
        ExitStatus::Exited(0) => None,
        ExitStatus::Exited(code) => Some(
            format!("command terminated with non-zero exit code: exit status {code}").into_bytes(),
        ),
        ExitStatus::Failed(msg) => Some(msg.clone().into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(exit_status(&ExitStatus::Exited(0))["status"], "Success");
        let f = exit_status(&ExitStatus::Exited(3));
        assert_eq!(f["status"], "Failure");
        assert_eq!(f["reason"], "NonZeroExitCode");
        assert_eq!(f["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(f["details"]["causes"][0]["message"], "3");
        assert_eq!(error_stream_bytes(3, &ExitStatus::Exited(0)), None);
        assert!(error_stream_bytes(2, &ExitStatus::Exited(3)).is_some());
    }
}
