//! Finding where the last N logical lines of a log start (for `--tail`), reading the files
//! backwards so that only the end of a large log is read.

use std::collections::VecDeque;
use std::io;

use super::backward::BackLines;
use super::cursor::{read_range, Pos};
use super::emit::selects;
use super::entry::parse_entry;
use super::files::LogFile;
use super::reader::ReadOptions;

/// Where to start reading: a position, and per stream whether it is inside a logical line there
/// (whose remaining entries must then not be shown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Start {
    pub pos: Pos,
    pub open: [bool; 2],
}

impl Start {
    /// The beginning of the log.
    pub const BEGINNING: Start = Start {
        pos: (0, 0),
        open: [false, false],
    };
}

/// Where the last `n` logical lines shown by `opts` start, in the snapshot `files`. Logical
/// lines are ordered by their first entry; one is shown if its first entry passes `opts`.
pub(crate) fn tail_start(files: &[LogFile], opts: &ReadOptions, n: usize) -> io::Result<Start> {
    let near = scan_back(files, opts, n)?;
    if n == 0 {
        return Ok(near);
    }
    // Exactly, reading forward from the place found backwards: keep the last n line starts.
    let mut starts: VecDeque<Start> = VecDeque::with_capacity(n);
    let mut open = near.open;
    read_range(files, near.pos, &mut |pos, e| {
        let i = e.stream.index();
        if !open[i] && selects(opts, &e) {
            if starts.len() == n {
                starts.pop_front();
            }
            starts.push_back(Start { pos, open });
        }
        open[i] = e.partial;
        Ok(())
    })?;
    Ok(match starts.front() {
        Some(first) if starts.len() == n => *first,
        _ => near,
    })
}

/// A place at or before the start of the last `n` shown logical lines (at the end of the log
/// for `n == 0`), found reading backwards, with the exact per-stream state there.
///
/// Counting `F` entries shown by `opts` backwards, `n + 4` of them guarantee `n` shown lines
/// starting after them: per stream, one counted line may have started earlier, and one more may
/// have started before `since`. Backwards from the first entry before `since` nothing is shown,
/// so the search stops there. (Both assume timestamps that do not go backwards; if they do, the
/// tail may hold fewer lines, never wrong ones.)
fn scan_back(files: &[LogFile], opts: &ReadOptions, n: usize) -> io::Result<Start> {
    let target = n.saturating_add(4);
    let mut count = 0usize;
    let mut start: Option<Pos> = None;
    // Per stream, whether the last entry before `start` is partial; unwanted streams don't matter.
    let mut open: [Option<bool>; 2] = [
        (!opts.stdout).then_some(false),
        (!opts.stderr).then_some(false),
    ];
    for (index, file) in files.iter().enumerate().rev() {
        let mut lines = BackLines::new(&file.file, &file.path)?;
        if n == 0 && start.is_none() {
            start = Some((index, lines.end()));
        }
        while let Some((offset, line)) = lines.prev_line()? {
            let Some(e) = parse_entry(line) else {
                continue;
            };
            if start.is_none() {
                if opts.since.is_some_and(|since| e.time < since) {
                    start = Some((index, offset + line.len() as u64 + 1));
                } else {
                    if !e.partial && selects(opts, &e) {
                        count += 1;
                        if count >= target {
                            start = Some((index, offset));
                        }
                    }
                    continue;
                }
            }
            let state = &mut open[e.stream.index()];
            if state.is_none() {
                *state = Some(e.partial);
            }
            if let (Some(pos), [Some(out), Some(err)]) = (start, open) {
                return Ok(Start {
                    pos,
                    open: [out, err],
                });
            }
        }
    }
    // Reached the beginning of the log: streams without an earlier entry are not in a line.
    Ok(Start {
        pos: start.unwrap_or((0, 0)),
        open: open.map(|state| state.unwrap_or(false)),
    })
}
