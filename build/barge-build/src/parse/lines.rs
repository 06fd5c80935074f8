//! The physical layer of a Dockerfile: parser directives at the top, comments, line
//! continuations (with the escape character, skipping comment and blank lines inside a
//! continuation as Docker does) and heredoc bodies. Produces logical lines with the 1-based
//! line where each starts.

use super::ParseError;
use crate::ast::{Directives, Heredoc};

/// One instruction's text, continuations joined, plus the heredoc bodies that follow it.
#[derive(Debug)]
pub(crate) struct LogicalLine {
    pub line: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
    /// The heredoc text as written (bodies and terminators), appended to `original`.
    pub heredoc_source: String,
}

/// Parses `# key=value` directives at the very top (until the first line that is not one).
pub(crate) fn directives(lines: &[&str]) -> Result<(Directives, usize), ParseError> {
    let mut d = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    let mut consumed = 0;
    for (i, raw) in lines.iter().enumerate() {
        let Some((key, value)) = directive(raw) else {
            break;
        };
        let line = i + 1;
        if seen.contains(&key) {
            return Err(ParseError::new(
                line,
                format!("only one `{key}` parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                d.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError::new(
                            line,
                            format!("invalid escape character {other:?}: must be ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => {
                check_syntax(&value, line)?;
                d.syntax = Some(value);
            }
            "check" => d.check = Some(value),
            // Docker treats unknown directives as comments.
            _ => {}
        }
        seen.push(key);
        consumed = i + 1;
    }
    Ok((d, consumed))
}

/// `# key = value` with a letter-led alphanumeric key.
fn directive(raw: &str) -> Option<(String, String)> {
    let rest = raw.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    let mut chars = key.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

/// barge parses the Dockerfile itself: a `# syntax=` naming another frontend than Docker's
/// own Dockerfile syntax cannot be honoured, so it is refused.
fn check_syntax(value: &str, line: usize) -> Result<(), ParseError> {
    let image = value.split('@').next().unwrap_or(value);
    let repo = image.split(':').next().unwrap_or(image);
    let repo = repo
        .trim_start_matches("docker.io/")
        .trim_start_matches("registry-1.docker.io/");
    if repo == "docker/dockerfile" || repo == "docker/dockerfile-upstream" {
        return Ok(());
    }
    Err(ParseError::new(
        line,
        format!(
            "unsupported syntax frontend {value:?}: barge parses Dockerfiles itself \
             (only docker/dockerfile syntax is accepted)"
        ),
    ))
}

fn is_comment(raw: &str) -> bool {
    raw.trim_start().starts_with('#')
}

/// Removes a trailing escape character (followed only by blanks); true when it was there.
fn strip_continuation(s: &str, escape: char) -> (String, bool) {
    let trimmed = s.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(head) => (head.to_string(), true),
        None => (s.to_string(), false),
    }
}

/// Splits the text after the directives into logical lines.
pub(crate) fn logical_lines(
    lines: &[&str],
    start: usize,
    escape: char,
    heredoc_names: impl Fn(&str) -> Vec<(String, bool, bool)>,
) -> Result<Vec<LogicalLine>, ParseError> {
    let mut out = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let raw = lines[i];
        let line = i + 1;
        i += 1;
        let first = raw.trim_start();
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let (mut text, mut cont) = strip_continuation(first, escape);
        while cont && i < lines.len() {
            let next = lines[i];
            i += 1;
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (piece, more) = strip_continuation(next, escape);
            text.push_str(&piece);
            cont = more;
        }
        let text = text.trim_end().to_string();
        let mut heredocs = Vec::new();
        let mut heredoc_source = String::new();
        for (name, expand, strip_tabs) in heredoc_names(&text) {
            let mut body = String::new();
            let mut closed = false;
            while i < lines.len() {
                let raw = lines[i];
                i += 1;
                heredoc_source.push('\n');
                heredoc_source.push_str(raw);
                let content = if strip_tabs {
                    raw.trim_start_matches('\t')
                } else {
                    raw
                };
                if content == name {
                    closed = true;
                    break;
                }
                body.push_str(content);
                body.push('\n');
            }
            if !closed {
                return Err(ParseError::new(
                    line,
                    format!("heredoc <<{name} is not terminated (no line `{name}` follows)"),
                ));
            }
            heredocs.push(Heredoc {
                name,
                body,
                expand,
                strip_tabs,
            });
        }
        out.push(LogicalLine {
            line,
            text,
            heredocs,
            heredoc_source,
        });
    }
    Ok(out)
}
