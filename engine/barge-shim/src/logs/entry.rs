//! One log line: parsing an entry.

use super::timestamp::parse_rfc3339;
use super::Stream;

/// One entry of a CRI log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// When the shim received the bytes: (seconds, nanoseconds) since the epoch, UTC.
    pub time: (i64, u32),
    pub stream: Stream,
    /// `P`: the line goes on in a later entry of the same stream (or the stream ended here).
    pub partial: bool,
    /// The bytes, without the newline of an `F` entry.
    pub content: Vec<u8>,
}

/// An entry borrowing its content from the line it was parsed from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryRef<'a> {
    pub time: (i64, u32),
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parse one log line (with or without its final `\n`). Strict: the timestamp must be RFC 3339,
/// the stream `stdout` or `stderr`, the tag `F` or `P`, each followed by exactly one space
/// (the content may be empty but the space before it is required), and the content must not
/// contain a newline. Readers skip lines this rejects.
pub fn parse_line(line: &[u8]) -> Option<LogEntry> {
    parse_entry(line).map(|e| LogEntry {
        time: e.time,
        stream: e.stream,
        partial: e.partial,
        content: e.content.to_vec(),
    })
}

/// [`parse_line`] without copying the content.
pub(crate) fn parse_entry(line: &[u8]) -> Option<EntryRef<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = fields.next()?;
    let stream = fields.next()?;
    let tag = fields.next()?;
    let content = fields.next()?;
    let time = parse_rfc3339(std::str::from_utf8(time).ok()?)?;
    let stream = Stream::parse(std::str::from_utf8(stream).ok()?)?;
    let partial = match tag {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    if content.contains(&b'\n') {
        return None;
    }
    Some(EntryRef {
        time,
        stream,
        partial,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cri_example() {
        let e = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F hello world\n");
        assert_eq!(
            e,
            Some(LogEntry {
                time: (1_475_713_029, 669_794_202),
                stream: Stream::Stdout,
                partial: false,
                content: b"hello world".to_vec(),
            })
        );
    }

    #[test]
    fn parses_partial_and_empty_entries() {
        let e = parse_line(b"2016-10-06T00:17:09.000000000Z stderr P  two  spaces ").unwrap();
        assert_eq!(e.stream, Stream::Stderr);
        assert!(e.partial);
        assert_eq!(e.content, b" two  spaces ");
        let e = parse_line(b"2016-10-06T00:17:09.000000000Z stdout F ").unwrap();
        assert!(!e.partial);
        assert!(e.content.is_empty());
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            &b""[..],
            b"garbage",
            b"2016-10-06T00:17:09.0Z stdout F",
            b"2016-10-06T00:17:09.0Z stdin F x",
            b"2016-10-06T00:17:09.0Z stdout X x",
            b"2016-10-06T00:17:09.0Z stdout FP x",
            b"1475713029 stdout F x",
            b"2016-10-06T00:17:09.0Z  stdout F x",
            b"2016-10-06T00:17:09.0Z stdout F a\nb",
            b"\xff stdout F x",
        ] {
            assert_eq!(parse_line(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
