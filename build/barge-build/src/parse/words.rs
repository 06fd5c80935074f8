//! Word-level helpers: splitting on blanks outside quotes (quotes kept, as Docker's parser
//! does: removing them is the expander's job), leading `--flag[=value]` words, the JSON
//! (exec) form, and heredoc markers (`<<EOF`, `<<-EOF`, `<<'EOF'`).

/// Splits on blanks that are outside quotes; quotes and escapes stay in the words.
pub(crate) fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == ' ' || c == '\t' {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    continue;
                }
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Splits off the first blank-separated word: `("RUN", "rest")`.
pub(crate) fn split_first(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// One `--name[=value]` flag as written.
#[derive(Debug, Clone)]
pub(crate) struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// Takes the leading `--flag` words off `rest` (a bare `--` ends them and is dropped).
pub(crate) fn take_flags(rest: &str, escape: char) -> (Vec<Flag>, String) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        if !rest.starts_with("--") {
            break;
        }
        let (word, tail) = split_first_quoted(rest, escape);
        rest = tail;
        if word == "--" {
            break;
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(unquote(v))),
            None => (body.to_string(), None),
        };
        flags.push(Flag { name, value });
    }
    (flags, rest.to_string())
}

/// Like [`split_first`] but a quoted part of the first word may contain blanks.
fn split_first_quoted(s: &str, escape: char) -> (String, &str) {
    let mut quote: Option<char> = None;
    let mut prev_escape = false;
    for (i, c) in s.char_indices() {
        if prev_escape {
            prev_escape = false;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == escape => prev_escape = true,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ' ' || c == '\t' => return (s[..i].to_string(), s[i..].trim_start()),
            None => {}
        }
    }
    (s.to_string(), "")
}

/// Removes one level of surrounding quotes from a flag value (`--chown="a:b"`).
fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// The JSON (exec) form: a JSON array of strings, or `None` (then it is shell form).
pub(crate) fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// The heredocs a shell-form line opens, in order: `(name, expand, strip_tabs)`.
/// A word `[fd]<<[-]NAME` (not `<<<`) opens one; a quoted name means no expansion.
pub(crate) fn heredoc_markers(text: &str, escape: char) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for word in split_words(text, escape) {
        let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(after) = w.strip_prefix("<<") else {
            continue;
        };
        if after.starts_with('<') {
            continue;
        }
        let (strip_tabs, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let mut name = String::new();
        let mut quoted = false;
        for c in after.chars() {
            match c {
                '"' | '\'' => quoted = true,
                c if c == escape => quoted = true,
                '>' | '<' | '|' | ';' | '&' | '(' | ')' => break,
                c => name.push(c),
            }
        }
        if !name.is_empty() {
            out.push((name, !quoted, strip_tabs));
        }
    }
    out
}
