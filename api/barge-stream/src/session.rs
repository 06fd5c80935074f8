//! What an exec or attach session exchanges with its client, whatever the protocol: the
//! client's input in the order it was sent (stdin bytes, the end of stdin, terminal sizes),
//! and the output the session sends (stdout, stderr, and the closing status on the error
//! stream). The protocol side (SPDY or WebSocket) feeds `input` and drains `output`; a closed
//! `input` means the client is gone.

use bytes::Bytes;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(crate) enum Input {
    Stdin(Bytes),
    StdinEnd,
    /// A terminal size (kubelet's `TerminalSize`: width = columns, height = rows).
    Resize {
        width: u16,
        height: u16,
    },
}

#[derive(Debug)]
pub(crate) enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The error stream's content; the last output of a session.
    Error(Vec<u8>),
}

/// The session's ends, as the exec/attach side sees them.
pub(crate) struct Session {
    /// The remote command protocol version (1..=5): the error stream's format.
    pub version: u8,
    pub input: mpsc::Receiver<Input>,
    pub output: mpsc::Sender<Output>,
}

/// How many messages may wait in each direction.
pub(crate) const DEPTH: usize = 16;

/// A parser of the resize stream: a sequence of JSON `{"Width":W,"Height":H}` documents.
#[derive(Default)]
pub(crate) struct ResizeParser {
    buf: Vec<u8>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TerminalSize {
    #[serde(default)]
    width: u16,
    #[serde(default)]
    height: u16,
}

impl ResizeParser {
    /// Feed bytes; the complete sizes in them (a bad document is skipped with what came).
    pub fn feed(&mut self, data: &[u8]) -> Vec<Input> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut used = 0;
        {
            let mut it =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<TerminalSize>();
            loop {
                match it.next() {
                    Some(Ok(sz)) => {
                        used = it.byte_offset();
                        out.push(Input::Resize {
                            width: sz.width,
                            height: sz.height,
                        });
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => {
                        used = self.buf.len();
                        break;
                    }
                    None => {
                        used = self.buf.len();
                        break;
                    }
                }
            }
        }
        self.buf.drain(..used);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_documents_in_pieces() {
        let mut p = ResizeParser::default();
        assert!(p.feed(b"{\"Width\":80,").is_empty());
        let v = p.feed(b"\"Height\":24}{\"Width\":100,\"Height\":50}\n{\"Wid");
        assert!(matches!(
            v[..],
            [
                Input::Resize {
                    width: 80,
                    height: 24
                },
                Input::Resize {
                    width: 100,
                    height: 50
                }
            ]
        ));
        let v = p.feed(b"th\":1,\"Height\":2}");
        assert!(matches!(
            v[..],
            [Input::Resize {
                width: 1,
                height: 2
            }]
        ));
    }
}
