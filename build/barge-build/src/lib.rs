//! `barge build`: images from Dockerfiles with barge's own engine (no BuildKit, no buildah).
//!
//! - [`ast`]: the parsed Dockerfile (the contract between the parser and the builder).
//! - [`parse`]: Dockerfile text to [`ast::Dockerfile`] (directives, continuations, heredocs,
//!   JSON/shell forms, flags); errors name the line.
//! - [`expand`]: `$VAR`, `${VAR:-default}`, `${VAR:+alt}`… with the stage's args and env.
//! - [`dockerignore`]: Docker's `.dockerignore` rules.
//! - [`context`]: the build context (a directory or a tar on stdin, hostile entries refused;
//!   sources resolved inside it; content hashes for the cache).
//! - [`builder`]: stages, RUN in barge containers, COPY/ADD, layers, the step cache, the
//!   final image.
#![forbid(unsafe_code)]

pub mod ast;
pub mod builder;
pub mod context;
pub mod dockerignore;
pub mod expand;
pub mod parse;
