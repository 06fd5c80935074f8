//! Reading a log file backwards, one complete line at a time, in blocks from its end.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::cursor::MAX_RECORD;
use super::io_context;

/// Bytes read from the file at a time.
const BLOCK: u64 = 64 * 1024;

/// Yields the complete lines of a file from the last to the first. An unfinished last line (no
/// newline yet) is left out; so are lines longer than [`MAX_RECORD`].
pub(crate) struct BackLines<'f> {
    file: &'f File,
    path: &'f Path,
    /// File offset of `buf[0]`.
    lo: u64,
    /// Bytes `lo..` of the file still to be returned; empty, or ending with a newline.
    /// Overlong lines make it hold up to [`MAX_RECORD`] plus a [`BLOCK`].
    buf: Vec<u8>,
    /// Length to cut `buf` to before looking for the next line (drops the line last returned).
    cut: Option<usize>,
    /// Offset just past the last complete line.
    end: u64,
}

impl<'f> BackLines<'f> {
    /// Start at the end of the last complete line of `file` (`path` names it in errors).
    pub fn new(file: &'f File, path: &'f Path) -> io::Result<Self> {
        let len = file
            .metadata()
            .map_err(|e| io_context(e, "examining log file", path))?
            .len();
        let mut lines = BackLines {
            file,
            path,
            lo: len,
            buf: Vec::new(),
            cut: None,
            end: 0,
        };
        lines.back_to_newline()?;
        lines.end = lines.lo + lines.buf.len() as u64;
        Ok(lines)
    }

    /// Offset just past the last complete line of the file (when this reader was made).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The previous line (without its newline) and its offset; `None` before the first.
    pub fn prev_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        if let Some(cut) = self.cut.take() {
            self.buf.truncate(cut);
        }
        loop {
            let Some(body_len) = self.buf.len().checked_sub(1) else {
                if self.lo == 0 {
                    return Ok(None);
                }
                self.read_block()?;
                continue;
            };
            let start = match self.buf[..body_len].iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None if self.lo == 0 => 0,
                None if body_len > MAX_RECORD => {
                    self.back_to_newline()?;
                    continue;
                }
                None => {
                    self.read_block()?;
                    continue;
                }
            };
            if body_len - start > MAX_RECORD {
                self.buf.truncate(start);
                continue;
            }
            self.cut = Some(start);
            return Ok(Some((self.lo + start as u64, &self.buf[start..body_len])));
        }
    }

    /// Drop `buf` and everything after the last newline before `lo`: `buf` becomes the bytes up
    /// to and including that newline that are in the block holding it (or nothing).
    fn back_to_newline(&mut self) -> io::Result<()> {
        self.buf.clear();
        while self.lo > 0 {
            let mut block = self.read_before(self.lo)?;
            self.lo -= block.len() as u64;
            if let Some(newline) = block.iter().rposition(|&b| b == b'\n') {
                block.truncate(newline + 1);
                self.buf = block;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Prepend the block before `lo` to `buf`.
    fn read_block(&mut self) -> io::Result<()> {
        let mut block = self.read_before(self.lo)?;
        self.lo -= block.len() as u64;
        block.extend_from_slice(&self.buf);
        self.buf = block;
        Ok(())
    }

    /// The up to [`BLOCK`] bytes before offset `hi`. If the file shrank meanwhile (truncated),
    /// it is treated as having no more lines.
    fn read_before(&mut self, hi: u64) -> io::Result<Vec<u8>> {
        let len = BLOCK.min(hi);
        let mut block = vec![0; len as usize];
        match self.file.read_exact_at(&mut block, hi - len) {
            Ok(()) => Ok(block),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.buf.clear();
                self.lo = 0;
                Ok(Vec::new())
            }
            Err(e) => Err(io_context(e, "reading log file", self.path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_backwards(content: &[u8]) -> (u64, Vec<(u64, Vec<u8>)>) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let path = Path::new("test");
        let mut back = BackLines::new(&file, path).unwrap();
        let mut lines = Vec::new();
        while let Some((offset, line)) = back.prev_line().unwrap() {
            lines.push((offset, line.to_vec()));
        }
        (back.end(), lines)
    }

    #[test]
    fn reads_lines_last_first() {
        let (end, lines) = lines_backwards(b"a\n\nccc\nunfinished");
        assert_eq!(end, 7);
        assert_eq!(
            lines,
            [(3, b"ccc".to_vec()), (2, Vec::new()), (0, b"a".to_vec())]
        );
        assert_eq!(lines_backwards(b"").1, []);
        assert_eq!(lines_backwards(b"no newline").1, []);
    }

    #[test]
    fn crosses_blocks_and_skips_overlong_lines() {
        let mut content = Vec::new();
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            expected.push((content.len() as u64, format!("line {i}").into_bytes()));
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        content.extend(std::iter::repeat_n(b'x', MAX_RECORD + 5));
        content.extend_from_slice(b"\nlast\n");
        expected.push((content.len() as u64 - 5, b"last".to_vec()));
        expected.reverse();
        let (end, lines) = lines_backwards(&content);
        assert_eq!(end, content.len() as u64);
        assert_eq!(lines, expected);
    }
}
