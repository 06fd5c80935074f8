//! Parsing timestamps: the RFC 3339 ones in log lines, and the ones users give `--since` and
//! `--until` (barge-util's parsers, shared with the engine and the API).

pub use barge_util::time::parse_timestamp;
pub(crate) use barge_util::time::{now, parse_rfc3339};
