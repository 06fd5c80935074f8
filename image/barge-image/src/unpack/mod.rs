//! Layer extraction (in progress).
