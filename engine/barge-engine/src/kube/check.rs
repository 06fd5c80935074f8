//! What `kube play` does with fields it does not act on: a field that would change what runs
//! is refused (naming the document, the kind, the object and the field); one that does not
//! (probes' bookkeeping, scheduling hints, status) is ignored, some with a warning.

use super::objects::Extra;

/// Problems found in one document, collected so the error names every one.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Where in the YAML: "document #2 (Deployment web)".
#[derive(Debug, Clone)]
pub struct Place {
    /// 1-based position in the stream.
    pub doc: usize,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            write!(f, "document #{} ({})", self.doc, self.kind)
        } else {
            write!(f, "document #{} ({} {})", self.doc, self.kind, self.name)
        }
    }
}

impl Findings {
    /// A refusal at `path` of `place`.
    pub fn refuse(&mut self, place: &Place, path: &str, why: impl std::fmt::Display) {
        self.errors.push(format!("{place}: {path}: {why}"));
    }

    pub fn warn(&mut self, place: &Place, path: &str, why: impl std::fmt::Display) {
        self.warnings.push(format!("{place}: {path}: {why}"));
    }

    /// Check the fields of `other` (those a shape at `path` does not name): `quiet` ones are
    /// ignored, `warned` ones ignored with a warning, the rest refused.
    pub fn extra(
        &mut self,
        place: &Place,
        path: &str,
        other: &Extra,
        quiet: &[&str],
        warned: &[&str],
    ) {
        for key in other.keys() {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if quiet.contains(&key.as_str()) {
                continue;
            }
            if warned.contains(&key.as_str()) {
                self.warn(place, &at, "ignored (barge does not act on it)");
            } else {
                self.refuse(place, &at, "not supported by barge's kube play");
            }
        }
    }
}

/// Top-level fields every object may have besides its own.
pub const TOP: &[&str] = &["apiVersion", "kind", "status"];
/// Metadata barge does not act on.
pub const META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "selfLink",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "deletionGracePeriodSeconds",
];
/// Pod spec fields about scheduling and accounts (one node, no API server).
pub const POD_SPEC_QUIET: &[&str] = &[
    "dnsPolicy",
    "subdomain",
    "schedulerName",
    "nodeName",
    "enableServiceLinks",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
];
pub const POD_SPEC_WARNED: &[&str] = &[
    "nodeSelector",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "imagePullSecrets",
    "readinessGates",
];
pub const CONTAINER_QUIET: &[&str] = &[
    "terminationMessagePath",
    "terminationMessagePolicy",
    "stdinOnce",
    "resizePolicy",
];
pub const CONTAINER_WARNED: &[&str] = &["livenessProbe", "readinessProbe", "startupProbe"];
pub const DEPLOYMENT_SPEC_QUIET: &[&str] = &[
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
];
