//! docker's stdcopy framing: `[stream, 0, 0, 0, len u32 BE]` + payload (1 stdout, 2 stderr).
//! The shim speaks the same frames plus an EXIT frame (stream 3) that docker clients must not
//! see; a tty stream goes to docker clients raw, without headers.

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// The shim's last frame: the exit code as decimal text.
pub const EXIT: u8 = 3;

/// One frame: header and payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let n = (payload.len() as u32).to_be_bytes();
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[stream, 0, 0, 0, n[0], n[1], n[2], n[3]]);
    v.extend_from_slice(payload);
    v
}

/// The stream and length of a header.
pub fn parse_header(h: &[u8; 8]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
}

/// What a docker client gets for one shim frame: the frame itself, the payload alone (tty),
/// or nothing (streams it did not ask for).
pub fn for_client(stream: u8, payload: &[u8], tty: bool, want: (bool, bool)) -> Option<Vec<u8>> {
    match stream {
        STDOUT if want.0 => Some(if tty {
            payload.to_vec()
        } else {
            frame(stream, payload)
        }),
        STDERR if want.1 => Some(if tty {
            payload.to_vec()
        } else {
            frame(stream, payload)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let f = frame(STDERR, b"oops");
        assert_eq!(f, [2, 0, 0, 0, 0, 0, 0, 4, b'o', b'o', b'p', b's']);
        let h: [u8; 8] = f[..8].try_into().unwrap();
        assert_eq!(parse_header(&h), (STDERR, 4));
        assert_eq!(
            for_client(STDOUT, b"x", true, (true, true)),
            Some(b"x".to_vec())
        );
        assert_eq!(for_client(STDERR, b"x", false, (true, false)), None);
        assert_eq!(for_client(EXIT, b"0", false, (true, true)), None);
    }
}
