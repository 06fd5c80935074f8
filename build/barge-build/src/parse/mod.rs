//! The Dockerfile parser: text to [`Dockerfile`].
//!
//! - `lines`: directives, comments, continuations, heredoc bodies.
//! - `words`: blank splitting (quotes kept), flags, JSON form, heredoc markers.
//! - `instruction`: each instruction's operands and allowed flags.
//!
//! Values are kept as written (quotes and `$VAR` included): run them through
//! [`crate::expand`] at build time, which substitutes variables and removes quotes as
//! Docker's shell-word processing does. Anything barge cannot honour (another syntax
//! frontend, BuildKit-only flags such as `RUN --security` or `COPY --parents`) is an error
//! naming the line, never ignored.

mod instruction;
mod lines;
mod words;

use crate::ast::{ArgDecl, Dockerfile, Inst, Stage};
use std::fmt;

/// A Dockerfile that cannot be built as written. Displays as `Dockerfile:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the offending instruction (1 for an empty file).
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dockerfile:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let all: Vec<&str> = text.lines().collect();
    let (directives, start) = lines::directives(&all)?;
    let escape = directives.escape;
    let logical = lines::logical_lines(&all, start, escape, |line| {
        let (name, rest) = words::split_first(line);
        match name.to_ascii_lowercase().as_str() {
            "run" | "copy" | "add" => {
                let (_, rest) = words::take_flags(rest, escape);
                if words::json_array(&rest).is_some() {
                    Vec::new()
                } else {
                    words::heredoc_markers(&rest, escape)
                }
            }
            _ => Vec::new(),
        }
    })?;
    if logical.is_empty() {
        return Err(ParseError::new(
            1,
            "the Dockerfile is empty (no instructions)",
        ));
    }
    let mut global_args: Vec<ArgDecl> = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let parsed = instruction::parse_line(&l, escape)?;
        match parsed {
            instruction::Parsed::From {
                base,
                name,
                platform,
            } => {
                if let Some(n) = &name {
                    if stages.iter().any(|s| s.name.as_deref() == Some(n.as_str())) {
                        return Err(ParseError::new(
                            l.line,
                            format!("duplicate stage name {n:?}"),
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name,
                    base,
                    platform,
                    line: l.line,
                    instructions: Vec::new(),
                });
            }
            instruction::Parsed::Inst(inst) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(inst),
                None => match inst.kind {
                    Inst::Arg(args) => global_args.extend(args),
                    _ => {
                        let name = words::split_first(&l.text).0.to_ascii_uppercase();
                        return Err(ParseError::new(
                            l.line,
                            format!("{name} comes before the first FROM (only ARG may)"),
                        ));
                    }
                },
            },
        }
    }
    if stages.is_empty() {
        return Err(ParseError::new(
            all.len().max(1),
            "no FROM instruction: a Dockerfile needs at least one stage",
        ));
    }
    Ok(Dockerfile {
        directives,
        global_args,
        stages,
    })
}

#[cfg(test)]
mod tests;
