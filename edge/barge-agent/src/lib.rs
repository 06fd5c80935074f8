//! `barge edge`: the agent on each device.
#![forbid(unsafe_code)]
