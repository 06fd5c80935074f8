//! `.dockerignore`: which context paths a build does not see, by Docker's rules.
//!
//! One pattern a line; `#` at the start of a line is a comment; blanks around a pattern are
//! trimmed; `!` makes an exception (re-includes); patterns are cleaned like Go's
//! `filepath.Clean` (`./a` and `a/` are `a`, a leading `/` is dropped). Patterns are Go
//! `filepath.Match` globs (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes) where `*` stops at `/`, plus
//! `**` for any number of directories. Later lines win; a pattern matching a parent directory
//! excludes everything below it.

/// One glob element.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    One,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
    /// `**/` or a `**` inside: any prefix ending with `/`, or nothing.
    AnyDirs,
    /// `**` at the end: anything.
    AnyRest,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    toks: Vec<Tok>,
}

/// The rules of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: bad pattern {pattern:?}: {message}")]
pub struct PatternError {
    pub line: usize,
    pub pattern: String,
    pub message: String,
}

/// Go's `filepath.Clean` on a `/`-separated path.
pub(crate) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(out.last(), Some(l) if *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn compile(p: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    toks.push(Tok::AnyRest);
                } else {
                    toks.push(Tok::AnyDirs);
                }
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    toks.push(Tok::Lit(n));
                }
                None => return Err("ends with an escape".into()),
            },
            '[' => {
                let mut neg = false;
                if matches!(chars.get(i), Some('^') | Some('!')) {
                    neg = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated [ class".into());
                    };
                    i += 1;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        let Some(&n) = chars.get(i) else {
                            return Err("unterminated [ class".into());
                        };
                        i += 1;
                        n
                    } else {
                        c
                    };
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        let mut h = chars[i + 1];
                        i += 2;
                        if h == '\\' {
                            let Some(&n) = chars.get(i) else {
                                return Err("unterminated [ class".into());
                            };
                            i += 1;
                            h = n;
                        }
                        if h < lo {
                            return Err(format!("bad range {lo}-{h}"));
                        }
                        hi = h;
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class(neg, ranges));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Matches a whole path against tokens (backtracking; paths and patterns are short).
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let Some((t, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match t {
        Tok::Lit(c) => s.first() == Some(c) && matches(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && matches(rest, &s[1..]),
        Tok::Class(neg, ranges) => match s.first() {
            Some(&c) if c != '/' => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                inside != *neg && matches(rest, &s[1..])
            }
            _ => false,
        },
        Tok::Star => {
            let mut i = 0;
            loop {
                if matches(rest, &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Tok::AnyDirs => {
            if matches(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && matches(rest, &s[i + 1..]))
        }
        Tok::AnyRest => true,
    }
}

impl Matcher {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Matcher, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            let mut cleaned = if p.is_empty() {
                String::new()
            } else {
                clean(p)
            };
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let toks = compile(&cleaned).map_err(|message| PatternError {
                line: n + 1,
                pattern: raw.to_string(),
                message,
            })?;
            patterns.push(Pattern {
                text: cleaned,
                exception,
                toks,
            });
        }
        Ok(Matcher { patterns })
    }

    /// True when the file has no rules at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is excluded.
    /// `is_dir` is accepted for callers' clarity; Docker's rules do not depend on it.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let path = clean(rel_path.trim_start_matches('/'));
        let chars: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exception only matters once excluded; an exclusion only when not yet.
            if p.exception != excluded {
                continue;
            }
            let hit = matches(&p.toks, &chars)
                || parents.iter().any(|&end| matches(&p.toks, &chars[..end]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// For a context walker that found `rel_dir` excluded: could an exception (`!pattern`)
    /// re-include something below it, so that it must still be walked? Conservative: true
    /// whenever an exception's leading path elements can match `rel_dir`'s.
    pub fn excluded_dir_may_contain_exceptions(&self, rel_dir: &str) -> bool {
        let dir = clean(rel_dir.trim_start_matches('/'));
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let pat_parts: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dir_parts.iter().enumerate() {
                let Some(pp) = pat_parts.get(i) else {
                    // The exception names the dir or a parent: it re-includes it all.
                    return true;
                };
                if pp.contains("**") {
                    return true;
                }
                let Ok(toks) = compile(pp) else {
                    return true;
                };
                let dc: Vec<char> = d.chars().collect();
                if !matches(&toks, &dc) {
                    return false;
                }
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a/b/"), "a/b");
        assert_eq!(clean("/a/../b"), "/b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn basics_comments_and_cleaning() {
        let x = m("# comment\n  \n *.md \n/target\n./build/\nsub/*.o\n");
        assert!(x.is_excluded("README.md", false));
        assert!(!x.is_excluded("doc/README.md", false), "* does not cross /");
        assert!(x.is_excluded("target", true));
        assert!(
            x.is_excluded("target/debug/x", false),
            "a parent dir match excludes below"
        );
        assert!(x.is_excluded("build/out", false));
        assert!(x.is_excluded("sub/a.o", false));
        assert!(!x.is_excluded("sub/deeper/a.o", false));
        assert!(!x.is_excluded("src/main.rs", false));
        assert!(!x.is_excluded("# comment", false));
        // A `#` that is not at the start of the line is part of the pattern.
        assert!(m(" #x\n").is_excluded("#x", false));
    }

    #[test]
    fn double_star() {
        let x = m("**/*.log\nlogs/**\na/**/z\n");
        assert!(x.is_excluded("x.log", false));
        assert!(x.is_excluded("a/b/c/x.log", false));
        assert!(x.is_excluded("logs/a/b", false));
        assert!(!x.is_excluded("logsx", false));
        assert!(x.is_excluded("a/z", false));
        assert!(x.is_excluded("a/b/c/z", false));
        assert!(!x.is_excluded("a/b/zz", false));
        assert!(m("**").is_excluded("any/thing", false));
    }

    #[test]
    fn exceptions_later_lines_win() {
        let x = m("*.md\n!README.md\n");
        assert!(x.is_excluded("CHANGES.md", false));
        assert!(!x.is_excluded("README.md", false));
        let x = m("!README.md\n*.md\n");
        assert!(
            x.is_excluded("README.md", false),
            "the later exclusion wins"
        );
        let x = m("docs\n!docs/keep\n");
        assert!(x.is_excluded("docs/other", false));
        assert!(!x.is_excluded("docs/keep", false));
        assert!(!x.is_excluded("docs/keep/inner/file", false));
        assert!(x.is_excluded("docs", true));
        let x = m("*\n!src\nsrc/*.tmp\n");
        assert!(x.is_excluded("Makefile", false));
        assert!(!x.is_excluded("src/a.rs", false));
        assert!(x.is_excluded("src/a.tmp", false));
    }

    #[test]
    fn globs() {
        let x = m("file?.txt\n[a-c]*.bin\n[^x]y\nlit\\*star\n");
        assert!(x.is_excluded("file1.txt", false));
        assert!(!x.is_excluded("file12.txt", false));
        assert!(x.is_excluded("b1.bin", false));
        assert!(!x.is_excluded("d1.bin", false));
        assert!(x.is_excluded("ay", false));
        assert!(!x.is_excluded("xy", false));
        assert!(x.is_excluded("lit*star", false));
        assert!(!x.is_excluded("litXstar", false));
        let e = Matcher::parse("ok\n[abc\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("[abc"), "{e}");
    }

    #[test]
    fn dirs_that_may_hold_exceptions() {
        let x = m("docs\n!docs/keep\n");
        assert!(x.excluded_dir_may_contain_exceptions("docs"));
        assert!(!x.excluded_dir_may_contain_exceptions("other"));
        let x = m("*\n!*/keep.txt\n");
        assert!(x.excluded_dir_may_contain_exceptions("anydir"));
        assert!(!x.excluded_dir_may_contain_exceptions("a/b"));
        let x = m("*\n!**/keep\n");
        assert!(x.excluded_dir_may_contain_exceptions("a/b/c"));
        assert!(!m("docs\n").excluded_dir_may_contain_exceptions("docs"));
    }
}
