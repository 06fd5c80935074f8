//! One-time join tokens: made by the API (`fleet token create`), consumed by a Join.
