//! docker's detach keys (`ctrl-p,ctrl-q` by default, `detachKeys=` of attach): typed on an
//! attached terminal, they end the attach and leave the container running. The daemon
//! watches the client's input for them, as dockerd does.

use crate::error::{ApiError, ApiResult};

/// A key sequence (at most 16 keys) and how much of it the input matched so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetachKeys {
    keys: [u8; 16],
    len: usize,
    matched: usize,
}

impl DetachKeys {
    /// docker's default, ctrl-p then ctrl-q.
    pub fn default_keys() -> DetachKeys {
        let mut keys = [0u8; 16];
        keys[0] = 0x10;
        keys[1] = 0x11;
        DetachKeys {
            keys,
            len: 2,
            matched: 0,
        }
    }

    /// Parse docker's syntax: comma-separated keys, each one character or `ctrl-X` (X one of
    /// `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`).
    pub fn parse(s: &str) -> ApiResult<DetachKeys> {
        let bad = || ApiError::bad_request(format!("Invalid detach keys ({s}) provided"));
        let mut keys = [0u8; 16];
        let mut len = 0;
        for k in s.split(',') {
            let b = match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => return Err(bad()),
                    }
                }
                None if k.len() == 1 => k.as_bytes()[0],
                _ => return Err(bad()),
            };
            if len == keys.len() {
                return Err(bad());
            }
            keys[len] = b;
            len += 1;
        }
        Ok(DetachKeys {
            keys,
            len,
            matched: 0,
        })
    }

    /// Pass `input` through, holding back a partial match (sent on once it breaks); whether
    /// the whole sequence was typed (the bytes before it are in `out`).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.len {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.len == 1 {
                    self.matched = 0;
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences() {
        let mut d = DetachKeys::default_keys();
        let mut out = Vec::new();
        assert!(!d.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!d.feed(b"c", &mut out));
        assert_eq!(out, b"ab\x10c");
        assert!(d.feed(b"x\x10\x11y", &mut out));
        assert_eq!(out, b"ab\x10cx");
        assert_eq!(DetachKeys::parse("ctrl-a,x").unwrap().keys[..2], [1, b'x']);
        assert!(DetachKeys::parse("ctrl-").is_err());
        assert!(DetachKeys::parse("ab").is_err());
    }
}
