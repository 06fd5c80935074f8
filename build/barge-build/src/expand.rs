//! Variable substitution in Dockerfile words, as Docker's shell-word processing does it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
//! `${VAR:?message}`/`${VAR?message}`; the escape character makes the next character literal
//! (`\$HOME` stays `$HOME`); single quotes are literal; double quotes group and allow
//! substitution. Quotes are removed from the result. Unknown variables expand to nothing.

use std::fmt;

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    pub message: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot expand {:?}: {}", self.word, self.message)
    }
}

impl std::error::Error for ExpandError {}

/// Expands one word with the default escape character `\`.
pub fn expand<F>(word: &str, lookup: F) -> Result<String, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    expand_with_escape(word, '\\', lookup)
}

/// Expands one word with the Dockerfile's escape character (`# escape=`).
pub fn expand_with_escape<F>(word: &str, escape: char, lookup: F) -> Result<String, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    let mut lx = Lexer::new(word, escape, &lookup, false);
    lx.run()?;
    Ok(lx.words.concat())
}

/// Expands and splits into words on blanks outside quotes (blanks coming from an unquoted
/// variable split too): `COPY $SRCS /dst`, `EXPOSE $PORTS`. `""` gives an empty word; an
/// unquoted empty variable gives none.
pub fn expand_words<F>(text: &str, lookup: F) -> Result<Vec<String>, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    expand_words_with_escape(text, '\\', lookup)
}

/// [`expand_words`] with the Dockerfile's escape character.
pub fn expand_words_with_escape<F>(
    text: &str,
    escape: char,
    lookup: F,
) -> Result<Vec<String>, ExpandError>
where
    F: Fn(&str) -> Option<String>,
{
    let mut lx = Lexer::new(text, escape, &lookup, true);
    lx.run()?;
    Ok(lx.words)
}

struct Lexer<'a, F> {
    word: &'a str,
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a F,
    split: bool,
    words: Vec<String>,
    /// The current word has begun (even if empty, after `""`).
    started: bool,
}

impl<'a, F> Lexer<'a, F>
where
    F: Fn(&str) -> Option<String>,
{
    fn new(word: &'a str, escape: char, lookup: &'a F, split: bool) -> Self {
        Lexer {
            word,
            chars: word.chars().collect(),
            pos: 0,
            escape,
            lookup,
            split,
            words: Vec::new(),
            started: false,
        }
    }

    fn err(&self, message: impl Into<String>) -> ExpandError {
        ExpandError {
            word: self.word.to_string(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn push(&mut self, s: &str) {
        if !self.started {
            self.words.push(String::new());
            self.started = true;
        }
        if let Some(w) = self.words.last_mut() {
            w.push_str(s);
        }
    }

    fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.push(c.encode_utf8(&mut b));
    }

    /// Text from an unquoted expansion: splits on blanks in word mode.
    fn push_unquoted(&mut self, s: &str) {
        if !self.split {
            self.push(s);
            return;
        }
        for c in s.chars() {
            if c == ' ' || c == '\t' || c == '\n' {
                self.started = false;
            } else {
                self.push_char(c);
            }
        }
    }

    fn run(&mut self) -> Result<(), ExpandError> {
        if !self.split {
            self.push("");
        }
        while let Some(c) = self.next() {
            if c == '\'' {
                self.push("");
                self.single_quoted()?;
            } else if c == '"' {
                self.push("");
                self.double_quoted()?;
            } else if c == '$' {
                let v = self.dollar()?;
                self.push_unquoted(&v);
            } else if c == self.escape {
                if let Some(n) = self.next() {
                    self.push_char(n);
                }
            } else if self.split && (c == ' ' || c == '\t' || c == '\n') {
                self.started = false;
            } else {
                self.push_char(c);
            }
        }
        Ok(())
    }

    fn single_quoted(&mut self) -> Result<(), ExpandError> {
        loop {
            match self.next() {
                None => return Err(self.err("no closing single quote")),
                Some('\'') => return Ok(()),
                Some(c) => self.push_char(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<(), ExpandError> {
        loop {
            match self.next() {
                None => return Err(self.err("no closing double quote")),
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.dollar()?;
                    self.push(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        self.push_char(n);
                    }
                    Some(_) => self.push_char(c),
                    None => {}
                },
                Some(c) => self.push_char(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`: the value it stands for (a lone `$` stays `$`).
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    /// The word after a `${VAR:-` modifier, up to the closing brace (expanded, quotes kept
    /// meaning).
    fn modifier_word(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(self.err("missing '}' after '${'")),
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some('\'') => loop {
                    match self.next() {
                        None => return Err(self.err("no closing single quote")),
                        Some('\'') => break,
                        Some(c) => out.push(c),
                    }
                },
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        if name.is_empty() {
            return Err(match self.peek() {
                None => self.err("missing '}' after '${'"),
                Some(c) => self.err(format!("bad substitution: unexpected {c:?} after '${{'")),
            });
        }
        let value = (self.lookup)(&name);
        match self.next() {
            None => Err(self.err("missing '}' after '${'")),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(c) => {
                let colon = c == ':';
                let op = if colon { self.next() } else { Some(c) };
                let set = match &value {
                    Some(v) => !colon || !v.is_empty(),
                    None => false,
                };
                match op {
                    Some('-') => {
                        let word = self.modifier_word()?;
                        Ok(if set { value.unwrap_or_default() } else { word })
                    }
                    Some('+') => {
                        let word = self.modifier_word()?;
                        Ok(if set { word } else { String::new() })
                    }
                    Some('?') => {
                        let word = self.modifier_word()?;
                        if set {
                            Ok(value.unwrap_or_default())
                        } else if word.is_empty() {
                            Err(self.err(format!("{name} is not set")))
                        } else {
                            Err(self.err(format!("{name}: {word}")))
                        }
                    }
                    None => Err(self.err("missing '}' after '${'")),
                    Some(o) => Err(self.err(format!(
                        "unsupported modifier {o:?} in ${{{name}...}} (barge supports :- - :+ + :? ?)"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "TWO" => Some("x y".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        }
    }

    fn e(w: &str) -> String {
        expand(w, env).unwrap()
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(e("$A"), "a");
        assert_eq!(e("${A}b"), "ab");
        assert_eq!(e("$Ab"), "");
        assert_eq!(e("x$UNSET-y"), "x-y");
        assert_eq!(e("$HOME/bin"), "/root/bin");
        assert_eq!(e("cost $"), "cost $");
        assert_eq!(e("a$ b"), "a$ b");
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(e("${UNSET:-d}"), "d");
        assert_eq!(e("${EMPTY:-d}"), "d");
        assert_eq!(e("${EMPTY-d}"), "");
        assert_eq!(e("${UNSET-d}"), "d");
        assert_eq!(e("${A:-d}"), "a");
        assert_eq!(e("${A:+alt}"), "alt");
        assert_eq!(e("${EMPTY:+alt}"), "");
        assert_eq!(e("${EMPTY+alt}"), "alt");
        assert_eq!(e("${UNSET+alt}"), "");
        assert_eq!(e("${UNSET:-$A/x}"), "a/x");
        assert_eq!(e("${UNSET:-${HOME}}"), "/root");
    }

    #[test]
    fn required() {
        assert_eq!(e("${A:?need A}"), "a");
        let err = expand("${UNSET:?need it}", env).unwrap_err();
        assert!(err.message.contains("need it"), "{err}");
        assert!(expand("${EMPTY:?}", env).is_err());
        assert_eq!(e("${EMPTY?}"), "");
    }

    #[test]
    fn escapes_and_quotes() {
        assert_eq!(e(r"\$A"), "$A");
        assert_eq!(e(r"\${A}"), "${A}");
        assert_eq!(e("'$A'"), "$A");
        assert_eq!(e("\"$A\""), "a");
        assert_eq!(e("\"'$A'\""), "'a'");
        assert_eq!(e(r#""a\"b""#), "a\"b");
        assert_eq!(e(r#""a\nb""#), r"a\nb");
        assert_eq!(e(r"a\ b"), "a b");
        assert_eq!(e("\"hello world\""), "hello world");
        assert_eq!(e("x\"\"y"), "xy");
    }

    #[test]
    fn other_escape_character() {
        assert_eq!(
            expand_with_escape("`$A C:\\dir", '`', env).unwrap(),
            "$A C:\\dir"
        );
    }

    #[test]
    fn errors() {
        for bad in ["${A", "${", "${A:-x", "'abc", "\"abc", "${}", "${A%x}"] {
            let err = expand(bad, env).unwrap_err();
            assert_eq!(err.word, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert!(expand("${A", env)
            .unwrap_err()
            .message
            .contains("missing '}'"));
    }

    #[test]
    fn words() {
        let w = |t: &str| expand_words(t, env).unwrap();
        assert_eq!(w("a b  c"), ["a", "b", "c"]);
        assert_eq!(w("$TWO z"), ["x", "y", "z"]);
        assert_eq!(w("\"$TWO\" z"), ["x y", "z"]);
        assert_eq!(w("'a b' \"\""), ["a b", ""]);
        assert_eq!(w("$UNSET x"), ["x"]);
        assert_eq!(w("80/tcp ${P:-53}/udp"), ["80/tcp", "53/udp"]);
        assert!(w("").is_empty());
    }
}
