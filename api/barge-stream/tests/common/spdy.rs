//! A small SPDY/3.1 client as kubelet's streaming clients behave (client-go over
//! moby/spdystream): the HTTP upgrade with `X-Stream-Protocol-Version`, then client streams
//! (odd ids) opened with SYN_STREAM and a zlib-compressed header block, data frames, and the
//! server's frames read until it closes the connection. Test-only code, written apart from the
//! server's framing (only the protocol's dictionary is shared).

use std::collections::HashMap;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DICT: &[u8] = include_bytes!("../../src/spdy/dictionary.bin");

/// The HTTP answer to the upgrade request.
pub struct Answer {
    pub status: u16,
    pub head: String,
}

pub struct Client {
    tcp: TcpStream,
    def: Compress,
    inf: Decompress,
    next: u32,
    /// Data received per stream, and whether the server ended it.
    pub data: HashMap<u32, Vec<u8>>,
    pub fin: HashMap<u32, bool>,
    pub replies: Vec<u32>,
    pub resets: Vec<u32>,
}

/// `http://ADDR/PATH` → (ADDR, PATH).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest.split_at(rest.find('/').expect("path"));
    (addr.to_string(), path.to_string())
}

/// Send a request and read the answer's head (the rest stays in the socket).
pub async fn request(url: &str, extra: &[(&str, &str)]) -> (TcpStream, Answer) {
    let (addr, path) = split_url(url);
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (tcp, Answer { status, head })
}

/// Upgrade to SPDY offering `protocols`; the client, or the refusal.
pub async fn connect(url: &str, protocols: &[&str]) -> Result<(Client, Answer), Answer> {
    let mut extra = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
    for p in protocols {
        extra.push(("X-Stream-Protocol-Version", p));
    }
    let (tcp, answer) = request(url, &extra).await;
    if answer.status != 101 {
        return Err(answer);
    }
    let mut def = Compress::new(Compression::default(), true);
    def.set_dictionary(DICT).unwrap();
    Ok((
        Client {
            tcp,
            def,
            inf: Decompress::new(true),
            next: 1,
            data: HashMap::new(),
            fin: HashMap::new(),
            replies: Vec::new(),
            resets: Vec::new(),
        },
        answer,
    ))
}

fn control(ty: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, 3];
    f.extend_from_slice(&ty.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

impl Client {
    /// Open a stream with `headers`; its id.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> u32 {
        let id = self.next;
        self.next += 2;
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (k, v) in headers {
            for s in [k.to_ascii_lowercase(), v.to_string()] {
                block.extend_from_slice(&(s.len() as u32).to_be_bytes());
                block.extend_from_slice(s.as_bytes());
            }
        }
        let mut z = Vec::with_capacity(block.len() + 1024);
        self.def
            .compress_vec(&block, &mut z, FlushCompress::Sync)
            .unwrap();
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&z);
        self.tcp.write_all(&control(1, 0, &p)).await.unwrap();
        id
    }

    /// Send data on stream `id` (FIN with `fin`).
    pub async fn send(&mut self, id: u32, data: &[u8], fin: bool) {
        let mut f = id.to_be_bytes().to_vec();
        f.push(u8::from(fin));
        f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(data);
        self.tcp.write_all(&f).await.unwrap();
    }

    /// Read one frame and record it; false at the end of the connection.
    pub async fn step(&mut self) -> bool {
        let mut h = [0u8; 8];
        if self.tcp.read_exact(&mut h).await.is_err() {
            return false;
        }
        let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
        let mut p = vec![0u8; len];
        self.tcp.read_exact(&mut p).await.unwrap();
        let fin = h[4] & 1 != 0;
        if h[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            self.data.entry(id).or_default().extend_from_slice(&p);
            if fin {
                self.fin.insert(id, true);
            }
            return true;
        }
        let ty = u16::from_be_bytes([h[2], h[3]]);
        let id = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
        match ty {
            2 => {
                // SYN_REPLY: inflate its block to keep the shared zlib stream in step.
                let mut out = Vec::with_capacity(4096);
                let mut input = &p[4..];
                loop {
                    let before = self.inf.total_in();
                    match self
                        .inf
                        .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    {
                        Ok(_) => {}
                        Err(e) if e.needs_dictionary().is_some() => {
                            input = &input[(self.inf.total_in() - before) as usize..];
                            self.inf.set_dictionary(DICT).unwrap();
                            continue;
                        }
                        Err(e) => panic!("SYN_REPLY header block: {e}"),
                    }
                    input = &input[(self.inf.total_in() - before) as usize..];
                    if input.is_empty() {
                        break;
                    }
                }
                assert!(out.len() >= 4, "SYN_REPLY header block decoded");
                self.replies.push(id);
                if fin {
                    self.fin.insert(id, true);
                }
            }
            3 => self.resets.push(id),
            _ => {}
        }
        true
    }

    /// Read until the server closes the connection (bounded).
    pub async fn run_to_end(&mut self) {
        let r = tokio::time::timeout(Duration::from_secs(60), async {
            while self.step().await {}
        })
        .await;
        assert!(r.is_ok(), "the server did not end the session in 60 s");
    }

    /// Read until stream `id` has data containing `needle` (bounded).
    pub async fn until_contains(&mut self, id: u32, needle: &str) {
        let r = tokio::time::timeout(Duration::from_secs(30), async {
            while !String::from_utf8_lossy(self.data.get(&id).map_or(&[][..], |v| v))
                .contains(needle)
            {
                assert!(self.step().await, "connection ended before {needle:?}");
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "no {needle:?} on stream {id} in 30 s: {:?}",
            self.text(id)
        );
    }

    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.data.get(&id).map_or(&[][..], |v| v)).into_owned()
    }
}
