//! Naming the field a JSON parse error is about (`linux.resources.devices[0].type`).
//!
//! serde_json reports a line and column; this scans the text up to that point and keeps the
//! stack of object keys and array indexes. `serde_path_to_error` does the same by wrapping the
//! deserializer, but that instantiates the spec's whole deserializer a second time (about
//! 300 KB of the runtime binary); this scan costs nothing until an error happens.

/// Parse JSON; an error names the field it is about, then serde's message.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| {
        // A missing field is reported at the end of its object: name the object.
        let object_only = e.to_string().starts_with("missing field");
        match path_at(text, e.line(), e.column(), object_only) {
            p if p.is_empty() => e.to_string(),
            p => format!("{p}: {e}"),
        }
    })
}

enum Frame {
    /// An object and the last key seen in it.
    Object(Option<String>),
    /// An array and the index of the current element.
    Array(usize),
}

/// The path of the value being read at `line`/`column` (1-based, as serde_json counts); with
/// `object_only`, of the innermost object there.
pub fn path_at(text: &str, line: usize, column: usize, object_only: bool) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut l, mut c) = (1, 0);
    // In an object, a string before ':' is a key.
    let mut expect_key = false;
    while let Some(ch) = chars.next() {
        if ch == '\n' {
            l += 1;
            c = 0;
        } else {
            c += 1;
        }
        if l > line || (l == line && c >= column) {
            break;
        }
        match ch {
            '{' => {
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            '[' => {
                stack.push(Frame::Array(0));
                expect_key = false;
            }
            '}' | ']' => {
                stack.pop();
                expect_key = false;
            }
            ',' => match stack.last_mut() {
                Some(Frame::Array(i)) => *i += 1,
                Some(Frame::Object(_)) => expect_key = true,
                None => {}
            },
            ':' => expect_key = false,
            '"' => {
                let mut s = String::new();
                while let Some(ch) = chars.next() {
                    c += 1;
                    match ch {
                        '"' => break,
                        '\\' => {
                            c += 1;
                            if let Some(esc) = chars.next() {
                                s.push(esc);
                            }
                        }
                        _ => s.push(ch),
                    }
                }
                if expect_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        *key = Some(s);
                    }
                }
            }
            _ => {}
        }
    }
    if object_only {
        if let Some(Frame::Object(key)) = stack.last_mut() {
            *key = None;
        }
    }
    let mut out = String::new();
    for f in &stack {
        match f {
            Frame::Object(Some(k)) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Frame::Object(None) => {}
            Frame::Array(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Dev {
        major: i64,
        #[serde(rename = "type")]
        typ: Option<char>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Res {
        devices: Vec<Dev>,
        limit: Option<i64>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        linux: Res,
    }

    fn err(text: &str) -> String {
        parse::<Doc>(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(r#"{"name":"a","linux":{"devices":[{"major":1},{"major":"x"}]}}"#);
        assert!(e.starts_with("linux.devices[1].major: invalid type"), "{e}");
        let e = err(r#"{"name":"a","linux":{"devices":[],"limit":18446744073709551615}}"#);
        assert!(e.starts_with("linux.limit: "), "{e}");
        let e = err("{\n  \"name\": \"a\\\"b\",\n  \"linux\": {\"devices\": [{\"major\": 1, \"type\": \"xy\"}]}\n}");
        assert!(e.starts_with("linux.devices[0].type: "), "{e}");
        let e = err(r#"{"name":7,"linux":{"devices":[]}}"#);
        assert!(e.starts_with("name: "), "{e}");
        let e = err(r#"{"name":"a","linux":{"devices":[{"type":"c"}]}}"#);
        assert!(
            e.starts_with("linux.devices[0]: missing field `major`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_keep_serdes_position() {
        let e = err(r#"{"name":"a","linux":{"devices":[{"major":1"#);
        assert!(e.contains("line 1"), "{e}");
        assert!(e.starts_with("linux.devices[0].major"), "{e}");
        let e = err("");
        assert!(e.contains("EOF"), "{e}");
    }
}
