//! The fleet HTTP API (`--api`): Kubernetes-like JSON resources for `barge fleet` and the
//! dashboard.
