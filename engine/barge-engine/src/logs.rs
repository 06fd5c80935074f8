//! Reading a container's log (`docker logs`, `GET /containers/{id}/logs`): the container's
//! output as it wrote it, per stream, with tail, since/until, timestamps and follow (which
//! ends when the container does). The log format and reader are the shim's
//! (`barge_shim::logs`).

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use barge_shim::logs::{parse_timestamp, read_logs, ReadOptions};

pub use barge_shim::logs::Stream;

use crate::error::{Error, Result};
use crate::Engine;

/// What to read of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep reading as the log grows, until the container is finished.
    pub follow: bool,
    /// Only lines at or after this time (unix seconds, nanoseconds).
    pub since: Option<(i64, u32)>,
    /// Only lines at or before this time.
    pub until: Option<(i64, u32)>,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for LogOptions {
    /// Everything of both streams, no timestamps, no following.
    fn default() -> Self {
        LogOptions {
            follow: false,
            since: None,
            until: None,
            tail: None,
            timestamps: false,
            stdout: true,
            stderr: true,
        }
    }
}

/// Some output of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// A point in time as `--since`/`--until` (and the API's `since`/`until`) take it: RFC 3339,
/// unix seconds (with a fraction), or relative to now (`10s`, `42m`, `2h`). `what` names the
/// option in the error.
pub fn parse_time(what: &str, s: &str) -> Result<(i64, u32)> {
    if let Some(t) = parse_timestamp(s) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => 0.0,
    };
    let n: f64 = num.parse().unwrap_or(-1.0);
    if mult == 0.0 || n < 0.0 {
        return Err(Error::BadParameter(format!("{what} {s:?}: expected a timestamp (RFC 3339 or unix seconds) or a duration like 10s, 42m, 2h")));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = now.as_secs_f64() - n * mult;
    Ok((t.floor() as i64, ((t - t.floor()) * 1e9) as u32))
}

/// A `tail` value: a count, or `all` (also `-1`) for everything.
pub fn parse_tail(what: &str, s: &str) -> Result<Option<usize>> {
    match s {
        "all" | "-1" | "" => Ok(None),
        n => n.parse::<usize>().map(Some).map_err(|_| {
            Error::BadParameter(format!("{what} {n:?}: expected a number or \"all\""))
        }),
    }
}

impl Engine {
    /// Write the log of container `key` to `out` (its stdout to `out.0`, stderr to `out.1`).
    /// With `follow`, returns once the container is finished and everything is read; a
    /// container whose shim is lost ends following with [`Error::ShimLost`] (nothing would
    /// write its log any more). An output closed by its reader ends reading quietly.
    pub fn logs_to(
        &self,
        key: &str,
        opts: &LogOptions,
        out: (&mut dyn Write, &mut dyn Write),
    ) -> Result<()> {
        self.logs_to_until(key, opts, out, &|| false)
    }

    /// [`Engine::logs_to`] that also stops, quietly, once `cancelled` says so (checked at
    /// every poll of a followed log: a client that went away while the container is silent).
    pub fn logs_to_until(
        &self,
        key: &str,
        opts: &LogOptions,
        out: (&mut dyn Write, &mut dyn Write),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<()> {
        let rec = self.db.find(key)?;
        let read = ReadOptions {
            tail: opts.tail,
            since: opts.since,
            until: opts.until,
            timestamps: opts.timestamps,
            stdout: opts.stdout,
            stderr: opts.stderr,
            follow: opts.follow,
        };
        let path = self.log_file(&rec);
        let mut checks = 0u32;
        let mut lost = None;
        let mut done = || {
            if cancelled() {
                return true;
            }
            // Follow until the container is finished for good (checked every few polls).
            checks += 1;
            if !checks.is_multiple_of(5) {
                return false;
            }
            match self.db.find(&rec.id) {
                Ok(r) => {
                    let st = self.status(&r);
                    if st.shim_lost {
                        lost = Some(st.shim_pid);
                    }
                    lost.is_some() || !st.state.is_active()
                }
                Err(_) => true,
            }
        };
        read_logs(&path, &read, out, &mut done).map_err(|e| Error::Io {
            what: "read the log",
            path: path.clone(),
            source: e,
        })?;
        match lost {
            Some(shim_pid) if opts.follow => Err(Error::ShimLost {
                id: rec.id,
                shim_pid,
            }),
            _ => Ok(()),
        }
    }

    /// The log of container `key` as a stream of chunks, read on a thread of its own (so a
    /// server can forward it as it comes); the last item is an error if reading failed.
    /// Dropping the stream stops the reading.
    pub fn logs(self: &Arc<Self>, key: &str, opts: &LogOptions) -> Result<LogStream> {
        // Look the container up now, so a wrong name fails here and not in the stream.
        let rec = self.db.find(key)?;
        let path = self.log_file(&rec);
        let id = rec.id;
        let (tx, rx) = sync_channel(16);
        let engine = self.clone();
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("barge-logs".into())
            .spawn(move || {
                let mut out = ChunkWriter(Stream::Stdout, tx.clone());
                let mut err = ChunkWriter(Stream::Stderr, tx.clone());
                if let Err(e) = engine.logs_to(&id, &opts, (&mut out, &mut err)) {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| Error::Io {
                what: "start a thread reading the log",
                path,
                source: e,
            })?;
        Ok(LogStream { rx })
    }
}

/// The chunks of a log, as [`Engine::logs`] reads them.
pub struct LogStream {
    rx: Receiver<Result<LogChunk>>,
}

impl Iterator for LogStream {
    type Item = Result<LogChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

/// Sends what is written as chunks of one stream; a closed receiver is a broken pipe.
struct ChunkWriter(Stream, SyncSender<Result<LogChunk>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.1
            .send(Ok(LogChunk {
                stream: self.0,
                data: buf.to_vec(),
            }))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stream_yields_each_stream_and_ends() {
        let (_dir, engine) = crate::testing::engine();
        let rec = crate::testing::container(&engine, "logger", 1, Default::default());
        std::fs::write(
            engine.paths.log(&rec.id),
            "2024-01-02T03:04:05.000000001Z stdout F one\n\
             2024-01-02T03:04:06.000000001Z stderr P tw\n\
             2024-01-02T03:04:06.000000002Z stderr F o\n\
             2024-01-02T03:04:07.000000001Z stdout F three\n",
        )
        .unwrap();
        let collect = |opts: &LogOptions| {
            let mut out: Vec<(Stream, String)> = Vec::new();
            for c in engine.logs("logger", opts).unwrap() {
                let c = c.unwrap();
                match out.last_mut() {
                    Some((s, text)) if *s == c.stream => {
                        text.push_str(&String::from_utf8_lossy(&c.data))
                    }
                    _ => out.push((c.stream, String::from_utf8_lossy(&c.data).into_owned())),
                }
            }
            out
        };
        assert_eq!(
            collect(&LogOptions::default()),
            vec![
                (Stream::Stdout, "one\n".to_string()),
                (Stream::Stderr, "two\n".to_string()),
                (Stream::Stdout, "three\n".to_string())
            ]
        );
        let tail = LogOptions {
            tail: Some(1),
            timestamps: true,
            stderr: false,
            ..Default::default()
        };
        assert_eq!(
            collect(&tail),
            vec![(
                Stream::Stdout,
                "2024-01-02T03:04:07.000000001Z three\n".to_string()
            )]
        );
        // Following a container that is not running ends with what there is.
        let follow = LogOptions {
            follow: true,
            ..Default::default()
        };
        assert_eq!(collect(&follow).len(), 3);
        assert!(matches!(
            engine.logs("nobody", &LogOptions::default()),
            Err(Error::NoSuchContainer(_))
        ));
    }

    #[test]
    fn times_and_tails() {
        assert_eq!(
            parse_time("--since", "1700000000").unwrap(),
            (1_700_000_000, 0)
        );
        assert_eq!(
            parse_time("--since", "2024-01-02T03:04:05Z").unwrap().0,
            1_704_164_645
        );
        let (t, _) = parse_time("--since", "10m").unwrap();
        let now = crate::docker::time::now();
        assert!((now - 600 - t).abs() <= 2, "{t} vs {now}");
        let e = parse_time("--until", "soon").unwrap_err().to_string();
        assert!(e.contains("--until \"soon\""), "{e}");
        assert_eq!(parse_tail("--tail", "all").unwrap(), None);
        assert_eq!(parse_tail("--tail", "5").unwrap(), Some(5));
        assert!(parse_tail("--tail", "x").is_err());
    }
}
