//! The frames of an attach stream (the shim's protocol: an 8-byte header with the stream and
//! length, as docker's stdcopy), for front ends that read a container's output from
//! [`crate::Engine::attach_socket`] or a started container.

pub use barge_shim::protocol::{frame_header, parse_header, EXIT, STDERR, STDOUT};
