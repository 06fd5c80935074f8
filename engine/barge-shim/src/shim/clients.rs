//! Connections to the shim's socket: parse the request line, buffer output without ever
//! blocking the shim, collect input for the container.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use crate::protocol::{self, Request};

/// Above this much unsent output to one client, the shim stops reading the container's output
/// (the container then blocks on its writes): nothing is dropped, as with docker's attach.
pub const OUT_HIGH_WATER: usize = 1 << 20;
const MAX_REQUEST: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No request line yet.
    Pending,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
    /// An attached exec's client (served by its session, never given the container's
    /// output).
    ExecAttach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
}

pub struct Client {
    pub sock: UnixStream,
    pub kind: Kind,
    request: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// The client closed its side for writing.
    pub input_closed: bool,
    /// Close once the buffered output is sent.
    pub closing: bool,
    pub dead: bool,
}

/// What reading from a client produced.
#[derive(Default)]
pub struct Incoming {
    pub request: Option<Request>,
    /// Bytes for the container's stdin.
    pub input: Vec<u8>,
    /// The stdin-attached client ended its input.
    pub input_eof: bool,
}

impl Client {
    pub fn new(sock: UnixStream) -> std::io::Result<Client> {
        sock.set_nonblocking(true)?;
        Ok(Client {
            sock,
            kind: Kind::Pending,
            request: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            input_closed: false,
            closing: false,
            dead: false,
        })
    }

    /// A client whose socket stays blocking until [`Client::read_request`].
    pub fn new_blocking(sock: UnixStream) -> std::io::Result<Client> {
        let c = Client::new(sock)?;
        c.sock.set_nonblocking(false)?;
        Ok(c)
    }

    /// Read the request line byte by byte (blocking socket), leaving any input after it
    /// unread.
    pub fn read_request(&mut self) -> Incoming {
        let mut inc = Incoming::default();
        let mut b = [0u8; 1];
        while self.kind == Kind::Pending && !self.dead && !self.closing {
            match self.sock.read(&mut b) {
                Ok(1) => self.take(&b, &mut inc),
                _ => self.dead = true,
            }
        }
        inc
    }

    /// The same connection, now owned by the returned client; this one is left dead (dropping
    /// it closes only its own descriptor).
    pub fn hand_over(&mut self) -> std::io::Result<Client> {
        let sock = self.sock.try_clone()?;
        self.dead = true;
        Ok(Client {
            sock,
            kind: self.kind,
            request: Vec::new(),
            out: std::mem::take(&mut self.out),
            out_pos: std::mem::take(&mut self.out_pos),
            input_closed: self.input_closed,
            closing: self.closing,
            dead: false,
        })
    }

    /// Whether what the client sends after its request is input for a process.
    fn takes_input(&self) -> bool {
        matches!(
            self.kind,
            Kind::Attach { stdin: true, .. } | Kind::ExecAttach { stdin: true, .. }
        )
    }

    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    pub fn wants_stream(&self, stream: u8) -> bool {
        match self.kind {
            Kind::Attach { stdout, stderr, .. } => {
                (stream == protocol::STDOUT && stdout) || (stream == protocol::STDERR && stderr)
            }
            _ => false,
        }
    }

    pub fn push_frame(&mut self, stream: u8, data: &[u8]) {
        self.out
            .extend_from_slice(&protocol::frame_header(stream, data.len()));
        self.out.extend_from_slice(data);
    }

    pub fn push_raw(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
    }

    /// Read what the client sent.
    pub fn read(&mut self) -> Incoming {
        let mut inc = Incoming::default();
        let mut buf = [0u8; 16384];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.input_closed = true;
                    if self.takes_input() {
                        inc.input_eof = true;
                    } else if self.kind == Kind::Pending {
                        self.dead = true;
                    }
                    return inc;
                }
                Ok(n) => self.take(&buf[..n], &mut inc),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return inc,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return inc;
                }
            }
            if self.dead || inc.input.len() >= 1 << 16 {
                return inc;
            }
        }
    }

    fn take(&mut self, mut data: &[u8], inc: &mut Incoming) {
        if self.kind == Kind::Pending {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.request.extend_from_slice(&data[..i]);
                    data = &data[i + 1..];
                    let line = String::from_utf8_lossy(&self.request).into_owned();
                    match Request::parse(&line) {
                        Some(r) => {
                            if let Request::Attach {
                                stdin,
                                stdout,
                                stderr,
                            } = r
                            {
                                self.kind = Kind::Attach {
                                    stdin,
                                    stdout,
                                    stderr,
                                };
                            } else if let Request::ExecAttach {
                                stdin,
                                stdout,
                                stderr,
                                ..
                            } = &r
                            {
                                self.kind = Kind::ExecAttach {
                                    stdin: *stdin,
                                    stdout: *stdout,
                                    stderr: *stderr,
                                };
                            } else if r == Request::Wait {
                                self.kind = Kind::Wait;
                            }
                            inc.request = Some(r);
                        }
                        None => {
                            self.push_raw(b"error: bad request\n");
                            self.closing = true;
                            return;
                        }
                    }
                }
                None => {
                    self.request.extend_from_slice(data);
                    if self.request.len() > MAX_REQUEST {
                        self.dead = true;
                    }
                    return;
                }
            }
        }
        if self.takes_input() {
            inc.input.extend_from_slice(data);
        }
    }

    /// Send buffered output; never blocks.
    pub fn flush(&mut self) {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.closing {
                self.dead = true;
            }
        } else if self.out_pos > 1 << 16 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }
}
