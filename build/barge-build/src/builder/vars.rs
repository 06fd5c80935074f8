//! Variable substitution in instruction words (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alt}`, `${VAR-x}`, `${VAR+x}`, `\$` for a literal dollar), with a stage's ARGs and
//! ENV. Quote removal is the parser's business; this only substitutes.

/// Substitute the variables of `word`; `lookup` gives a variable's value (None: unset).
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('{') => {
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("{word:?}: missing '}}' after '${{'"));
                }
                let inner: String = chars[start..j].iter().collect();
                out.push_str(&braced(&inner, lookup, word)?);
                i = j + 1;
            }
            Some(n) if n.is_ascii_alphabetic() || *n == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    word: &str,
) -> Result<String, String> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    if name.is_empty() {
        return Err(format!("{word:?}: bad substitution ${{{inner}}}"));
    }
    let rest = &inner[name_end..];
    let value = lookup(name);
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('+') {
        ("+", a)
    } else if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    } else {
        return Err(format!("{word:?}: unsupported modifier in ${{{inner}}}"));
    };
    let arg = || expand(arg, lookup);
    Ok(match op {
        ":-" => match value {
            Some(v) if !v.is_empty() => v,
            _ => arg()?,
        },
        "-" => match value {
            Some(v) => v,
            None => arg()?,
        },
        ":+" => match value {
            Some(v) if !v.is_empty() => arg()?,
            _ => String::new(),
        },
        _ => match value {
            Some(_) => arg()?,
            None => String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes() {
        let look = |n: &str| match n {
            "A" => Some("a".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        let e = |w: &str| expand(w, &look).unwrap();
        assert_eq!(e("x$A-${A}y"), "xa-ay");
        assert_eq!(e("${B:-d}${E:-e}${E-f}${A:+p}${B:+q}${A+r}"), "deprp");
        assert_eq!(e("\\$A $ $1"), "$A $ $1");
        assert!(expand("${A", &look).is_err());
    }
}
