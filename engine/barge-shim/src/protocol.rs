//! The shim's socket protocol. A client sends one request line:
//!
//! - `attach STDIN STDOUT STDERR` (each `0` or `1`): the shim then sends the container's output
//!   as frames (docker's stdcopy format: `[stream, 0, 0, 0, len as u32 big-endian]` + bytes;
//!   stream 1 stdout, 2 stderr) and, when the container exits and its output is drained, an
//!   `EXIT` frame with the exit code as decimal text. With STDIN, bytes the client writes after
//!   the request line go to the container's stdin; the client shutting down its write side
//!   closes that stdin.
//! - `resize ROWS COLS`: set the terminal size; answered `ok`.
//! - `wait`: answered with the exit code (decimal text and newline) when the container exits.
//! - `wake`: the shim re-reads the stop marker (a user stop during a restart delay); `ok`.
//! - `exec ID`: start the detached exec whose configuration is `execs/ID.json` in the
//!   container's directory (see `barge_shim::exec`); answered `ok PID` once it runs, or
//!   `err CODE MESSAGE` (CODE: 127 program not found, 126 not executable, else 125).
//! - `exec-attach ID STDIN STDOUT STDERR [ROWS COLS]`: start exec ID (as `exec`) with its output
//!   and input on this connection: a pty (of ROWS x COLS from the start, when given) when its
//!   configuration asks for a terminal, else pipes (stdin a
//!   pipe only with STDIN and the exec's `open_stdin`, else /dev/null). Answered `ok PID` and a
//!   newline once it runs (or `err CODE MESSAGE` as for `exec`, and nothing more); then, as for
//!   `attach`, its output as frames (everything on stream 1 with a terminal), the client's
//!   bytes to its stdin (a shutdown of the client's write side closes that stdin), and an
//!   `EXIT` frame with its exit code once it exited and its output is drained. The shim reaps
//!   it and records the exit as for `exec`. A client that hangs up before that leaves the
//!   process a hangup (SIGHUP), as a closed terminal does.
//! - `exec-resize ID ROWS COLS`: set the terminal size of attached exec ID; `ok`, or
//!   `err 125 MESSAGE` when no such exec with a terminal runs.
//!
//! The shim's answer to the engine that started it (one line on its stdout) has the same
//! form: [`Reply`].

/// The shim's one-line answer to the engine that started it (on its stdout), or to an `exec`
/// request: `ok PID`, or `err CODE MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok {
        pid: i32,
    },
    /// CODE: 127 program not found, 126 not executable, 125 any other failure.
    Err {
        code: i32,
        msg: String,
    },
}

impl Reply {
    /// Parse an answer line; `None` when it is neither form. An `err` without a numeric code
    /// (an older shim) is a 125.
    pub fn parse(line: &str) -> Option<Reply> {
        let line = line.trim_end();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "ok" => rest.trim().parse().ok().map(|pid| Reply::Ok { pid }),
            "err" => Some(match rest.split_once(' ') {
                Some((code, msg)) if code.parse::<i32>().is_ok() => Reply::Err {
                    code: code.parse().unwrap_or(125),
                    msg: msg.to_string(),
                },
                _ if rest.parse::<i32>().is_ok() => Reply::Err {
                    code: rest.parse().unwrap_or(125),
                    msg: String::new(),
                },
                _ => Reply::Err {
                    code: 125,
                    msg: rest.to_string(),
                },
            }),
            _ => None,
        }
    }
}

/// Frame stream ids.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;

/// The 8-byte header of a frame.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Parse a frame header: `(stream, length)`.
pub fn parse_header(h: &[u8; 8]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Resize {
        rows: u16,
        cols: u16,
    },
    Wait,
    Wake,
    Exec {
        id: String,
    },
    ExecAttach {
        id: String,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        /// The terminal's first size (rows, columns).
        size: Option<(u16, u16)>,
    },
    ExecResize {
        id: String,
        rows: u16,
        cols: u16,
    },
    /// Reopen the log file at its path (it was renamed away for rotation): `ok` or `err MSG`.
    ReopenLog,
}

/// An exec id names a file: hex only.
fn exec_id(w: Option<&str>) -> Option<String> {
    let id = w?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(id.into())
}

impl Request {
    pub fn parse(line: &str) -> Option<Request> {
        let mut words = line.split_whitespace();
        let flag = |w: Option<&str>| w == Some("1");
        match words.next()? {
            "attach" => Some(Request::Attach {
                stdin: flag(words.next()),
                stdout: flag(words.next()),
                stderr: flag(words.next()),
            }),
            "resize" => Some(Request::Resize {
                rows: words.next()?.parse().ok()?,
                cols: words.next()?.parse().ok()?,
            }),
            "wait" => Some(Request::Wait),
            "wake" => Some(Request::Wake),
            "reopen-log" => Some(Request::ReopenLog),
            "exec" => Some(Request::Exec {
                id: exec_id(words.next())?,
            }),
            "exec-attach" => Some(Request::ExecAttach {
                id: exec_id(words.next())?,
                stdin: flag(words.next()),
                stdout: flag(words.next()),
                stderr: flag(words.next()),
                size: match (words.next(), words.next()) {
                    (Some(r), Some(c)) => Some((r.parse().ok()?, c.parse().ok()?)),
                    (None, _) => None,
                    (Some(_), None) => return None,
                },
            }),
            "exec-resize" => Some(Request::ExecResize {
                id: exec_id(words.next())?,
                rows: words.next()?.parse().ok()?,
                cols: words.next()?.parse().ok()?,
            }),
            _ => None,
        }
    }

    pub fn line(&self) -> String {
        let b = |x: bool| if x { '1' } else { '0' };
        match self {
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => format!("attach {} {} {}\n", b(*stdin), b(*stdout), b(*stderr)),
            Request::Resize { rows, cols } => format!("resize {rows} {cols}\n"),
            Request::Wait => "wait\n".into(),
            Request::Wake => "wake\n".into(),
            Request::ReopenLog => "reopen-log\n".into(),
            Request::Exec { id } => format!("exec {id}\n"),
            Request::ExecAttach {
                id,
                stdin,
                stdout,
                stderr,
                size,
            } => format!(
                "exec-attach {id} {} {} {}{}\n",
                b(*stdin),
                b(*stdout),
                b(*stderr),
                size.map(|(r, c)| format!(" {r} {c}")).unwrap_or_default()
            ),
            Request::ExecResize { id, rows, cols } => format!("exec-resize {id} {rows} {cols}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Attach {
                stdin: true,
                stdout: true,
                stderr: false,
            },
            Request::Resize { rows: 24, cols: 80 },
            Request::Wait,
            Request::Wake,
            Request::Exec { id: "ab12".into() },
            Request::ExecAttach {
                id: "cd34".into(),
                stdin: false,
                stdout: true,
                stderr: true,
                size: None,
            },
            Request::ExecAttach {
                id: "cd35".into(),
                stdin: true,
                stdout: true,
                stderr: false,
                size: Some((40, 120)),
            },
            Request::ExecResize {
                id: "ef".into(),
                rows: 50,
                cols: 132,
            },
        ] {
            assert_eq!(Request::parse(&r.line()), Some(r));
        }
        assert_eq!(Request::parse("resize x 3"), None);
        assert_eq!(Request::parse("bogus"), None);
        assert_eq!(Request::parse("exec ../x"), None);
        assert_eq!(Request::parse("exec"), None);
        assert_eq!(Reply::parse("ok 42\n"), Some(Reply::Ok { pid: 42 }));
        assert_eq!(
            Reply::parse("err 127 exec: \"nope\": not found\n"),
            Some(Reply::Err {
                code: 127,
                msg: "exec: \"nope\": not found".into()
            })
        );
        assert_eq!(
            Reply::parse("err no such file"),
            Some(Reply::Err {
                code: 125,
                msg: "no such file".into()
            })
        );
        assert_eq!(Reply::parse("hello"), None);
        assert_eq!(Request::parse("exec-attach ../x 1 1 1"), None);
        assert_eq!(Request::parse("exec-resize ab 24"), None);
        assert_eq!(Request::parse("exec-attach ab 1 1 1 24"), None);
        let h = frame_header(STDERR, 70000);
        assert_eq!(parse_header(&h), (STDERR, 70000));
    }
}
