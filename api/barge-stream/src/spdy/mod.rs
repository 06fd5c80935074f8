//! SPDY/3.1 as kubelet's streaming clients speak it (moby/spdystream under client-go): the
//! frames, the zlib-compressed header blocks, and a server-side connection that hands the
//! client's streams and data to a session in arrival order.

pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod session;
