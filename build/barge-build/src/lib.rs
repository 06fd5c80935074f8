//! `barge build`: images from Dockerfiles with barge's own engine (no BuildKit, no buildah).
//!
//! - [`ast`]: the parsed Dockerfile (the contract between the parser and the builder).
//! - [`builder`]: stages, RUN in barge containers, COPY/ADD, layers, the step cache, the
//!   final image.
//!
//! Planned modules (issue 19): `parse` (Dockerfile text to [`ast::Dockerfile`]: directives,
//! line continuations, heredocs, JSON/shell forms, flags; errors name the line), `expand`
//! (`$VAR`, `${VAR:-default}`, `${VAR:+alt}` with the stage's args and env), `dockerignore`,
//! `context` (a directory or a tar on stdin, hostile entries refused).
#![forbid(unsafe_code)]

pub mod ast;
pub mod builder;
pub mod expand;
pub mod parse;
