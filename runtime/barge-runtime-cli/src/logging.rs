//! A minimal `tracing` subscriber writing runc-style log lines: stderr always, and the
//! `--log` file in text (`time=".." level=error msg=".."`) or JSON
//! (`{"level":"error","msg":"..","time":".."}`, which containerd parses).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::LogFormat;

struct Logger {
    file: Option<Mutex<File>>,
    format: LogFormat,
    max: Level,
}

/// Install the logger.
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> Result<(), String> {
    let file = match path {
        Some(p) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("open log file {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let logger = Logger {
        file,
        format,
        max: if debug { Level::DEBUG } else { Level::WARN },
    };
    // Only fails if a subscriber is already set (tests calling run twice): keep the first.
    let _ = tracing::subscriber::set_global_default(logger);
    Ok(())
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = barge_log::Message::default();
        event.record(&mut msg);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let time = barge_util::time::now_rfc3339();
        let _ = writeln!(std::io::stderr(), "barge-runtime: {level}: {}", msg.0);
        if let Some(f) = &self.file {
            let line = match self.format {
                LogFormat::Json => {
                    serde_json::json!({"level": level, "msg": msg.0, "time": time}).to_string()
                }
                LogFormat::Text => format!("time={time:?} level={level} msg={:?}", msg.0),
            };
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}
