//! What can go wrong handing out URLs or starting the server.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The request breaks a rule (gRPC InvalidArgument).
    #[error("{0}")]
    Invalid(String),
    /// Too many URLs outstanding (gRPC ResourceExhausted).
    #[error("too many streaming requests outstanding (at most {0}); try again later")]
    TooManyRequests(usize),
    /// No randomness for a token.
    #[error("make a streaming token: {0}")]
    Token(String),
    #[error("streaming server: listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
