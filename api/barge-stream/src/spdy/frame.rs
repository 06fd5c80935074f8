//! SPDY/3.1 frames (draft 3.1): control frames `1 | version(15) | type(16) | flags(8) |
//! length(24)`, data frames `0 | stream(31) | flags(8) | length(24)`, and the name/value
//! header blocks of SYN_STREAM, SYN_REPLY and HEADERS, compressed with one zlib stream per
//! direction and connection, primed with the protocol's dictionary.

use std::io;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The zlib dictionary of SPDY/3 header blocks (the protocol's, 1423 bytes).
pub const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream is refused.
pub const REFUSED_STREAM: u32 = 3;

/// The largest frame accepted (a header block or data chunk).
const MAX_FRAME: usize = 1 << 20;

pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last: u32,
        status: u32,
    },
    Headers {
        id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        id: u32,
        delta: u32,
    },
    Data {
        id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this side ignores.
    Other(u16),
}

/// The value of header `name` (case-insensitive; SPDY sends names in lower case).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One direction's header compression state.
pub struct Deflater {
    z: Compress,
    primed: bool,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater {
            z: Compress::new(Compression::default(), true),
            primed: false,
        }
    }
}

impl Deflater {
    /// Compress a header block, ending with a sync flush (the block is complete in it).
    pub fn block(&mut self, h: &Headers) -> io::Result<Vec<u8>> {
        if !self.primed {
            self.z.set_dictionary(DICTIONARY).map_err(bad)?;
            self.primed = true;
        }
        let raw = encode_block(h);
        let mut input = &raw[..];
        let mut out = Vec::with_capacity(raw.len() + 64);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(bad)?;
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The other direction's decompression state.
pub struct Inflater {
    z: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            z: Decompress::new(true),
        }
    }
}

impl Inflater {
    /// Decompress and parse one header block.
    pub fn block(&mut self, mut input: &[u8]) -> io::Result<Headers> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            }
            if out.len() > MAX_FRAME {
                return Err(bad("header block too large"));
            }
            let before_in = self.z.total_in();
            let before_out = out.len();
            let r = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            match r {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z.set_dictionary(DICTIONARY).map_err(bad)?;
                    continue;
                }
                Err(e) => return Err(bad(e)),
            }
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && out.len() == before_out {
                return Err(bad("header block: the compressed data does not progress"));
            }
        }
        decode_block(&out)
    }
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("SPDY: {e}"))
}

/// A name/value block, uncompressed: count, then length-prefixed names and values.
pub fn encode_block(h: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(h.len() as u32).to_be_bytes());
    for (n, v) in h {
        let n = n.to_ascii_lowercase();
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

fn decode_block(b: &[u8]) -> io::Result<Headers> {
    let mut r = b;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        if r.len() < n {
            return Err(bad("header block truncated"));
        }
        let (a, rest) = r.split_at(n);
        r = rest;
        Ok(a)
    };
    let u32_of = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let count = u32_of(take(4)?);
    let mut h = Vec::new();
    for _ in 0..count {
        let n = u32_of(take(4)?);
        let name = String::from_utf8_lossy(take(n)?).into_owned();
        let n = u32_of(take(4)?);
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        // Several values of one name are NUL-separated.
        for v in value.split('\0') {
            h.push((name.clone(), v.to_string()));
        }
    }
    Ok(h)
}

fn u32_at(p: &[u8], at: usize) -> io::Result<u32> {
    p.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("control frame too short"))
}

/// Read one frame (`None` at a clean end of the connection).
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    inf: &mut Inflater,
) -> io::Result<Option<Frame>> {
    let mut h = [0u8; 8];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let flags = h[4];
    let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
    if len > MAX_FRAME {
        return Err(bad(format!("frame of {len} bytes")));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).await?;
    let fin = flags & FLAG_FIN != 0;
    if h[0] & 0x80 == 0 {
        let id = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0x7fff_ffff;
        return Ok(Some(Frame::Data {
            id,
            fin,
            data: Bytes::from(p),
        }));
    }
    let version = u16::from_be_bytes([h[0] & 0x7f, h[1]]);
    if version != VERSION {
        return Err(bad(format!("version {version}, expected {VERSION}")));
    }
    let ty = u16::from_be_bytes([h[2], h[3]]);
    let f = match ty {
        SYN_STREAM => {
            let id = u32_at(&p, 0)? & 0x7fff_ffff;
            let block = p.get(10..).ok_or_else(|| bad("SYN_STREAM too short"))?;
            Frame::SynStream {
                id,
                fin,
                headers: inf.block(block)?,
            }
        }
        SYN_REPLY | HEADERS => {
            let id = u32_at(&p, 0)? & 0x7fff_ffff;
            let headers = inf.block(&p[4..])?;
            if ty == SYN_REPLY {
                Frame::SynReply { id, fin, headers }
            } else {
                Frame::Headers { id, fin, headers }
            }
        }
        RST_STREAM => Frame::RstStream {
            id: u32_at(&p, 0)? & 0x7fff_ffff,
            status: u32_at(&p, 4)?,
        },
        SETTINGS => Frame::Settings,
        PING => Frame::Ping(u32_at(&p, 0)?),
        GOAWAY => Frame::GoAway {
            last: u32_at(&p, 0)? & 0x7fff_ffff,
            status: u32_at(&p, 4).unwrap_or(0),
        },
        WINDOW_UPDATE => Frame::WindowUpdate {
            id: u32_at(&p, 0)? & 0x7fff_ffff,
            delta: u32_at(&p, 4)? & 0x7fff_ffff,
        },
        other => Frame::Other(other),
    };
    Ok(Some(f))
}

fn control(ty: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + payload.len());
    b.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    b.extend_from_slice(&ty.to_be_bytes());
    b.push(flags);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    b.extend_from_slice(payload);
    b
}

/// The bytes of `f` (header blocks compressed with `def`).
pub fn encode(f: &Frame, def: &mut Deflater) -> io::Result<Vec<u8>> {
    let fl = |fin: bool| if fin { FLAG_FIN } else { 0 };
    Ok(match f {
        Frame::Data { id, fin, data } => {
            let mut b = Vec::with_capacity(8 + data.len());
            b.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
            b.push(fl(*fin));
            b.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            b.extend_from_slice(data);
            b
        }
        Frame::SynStream { id, fin, headers } => {
            let mut p = Vec::new();
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&0u32.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&def.block(headers)?);
            control(SYN_STREAM, fl(*fin), &p)
        }
        Frame::SynReply { id, fin, headers } | Frame::Headers { id, fin, headers } => {
            let ty = if matches!(f, Frame::SynReply { .. }) {
                SYN_REPLY
            } else {
                HEADERS
            };
            let mut p = Vec::new();
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&def.block(headers)?);
            control(ty, fl(*fin), &p)
        }
        Frame::RstStream { id, status } => {
            let mut p = id.to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(RST_STREAM, 0, &p)
        }
        Frame::Settings => control(SETTINGS, 0, &0u32.to_be_bytes()),
        Frame::Ping(id) => control(PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last, status } => {
            let mut p = last.to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(GOAWAY, 0, &p)
        }
        Frame::WindowUpdate { id, delta } => {
            let mut p = id.to_be_bytes().to_vec();
            p.extend_from_slice(&delta.to_be_bytes());
            control(WINDOW_UPDATE, 0, &p)
        }
        Frame::Other(_) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.ends_with(b",*,enq=0."));
    }

    #[tokio::test]
    async fn frames_round_trip_with_shared_compression() {
        let mut def = Deflater::default();
        let mut inf = Inflater::default();
        let h: Headers = vec![
            ("streamtype".into(), "stdout".into()),
            ("port".into(), "80".into()),
        ];
        let frames = vec![
            Frame::SynStream {
                id: 1,
                fin: false,
                headers: h.clone(),
            },
            Frame::SynStream {
                id: 3,
                fin: true,
                headers: h.clone(),
            },
            Frame::SynReply {
                id: 3,
                fin: false,
                headers: vec![],
            },
            Frame::Data {
                id: 5,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Ping(7),
            Frame::WindowUpdate { id: 0, delta: 9 },
            Frame::RstStream { id: 1, status: 5 },
            Frame::GoAway { last: 3, status: 0 },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(encode(f, &mut def).unwrap());
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(&read(&mut r, &mut inf).await.unwrap().unwrap(), f);
        }
        assert!(read(&mut r, &mut inf).await.unwrap().is_none());
    }
}
