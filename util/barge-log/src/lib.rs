//! Minimal `tracing` subscribers (no `tracing-subscriber`: a few lines suffice and keep the
//! binaries small).
//!
//! - [`init_stderr`]: one line per event on stderr (`<time> <program> <level>: <message>`),
//!   the program's own events from INFO and everyone else's from WARN, or everything from
//!   DEBUG when the program's debug variable is set. `barge hub` and `barge mapper` use it.
//! - [`Message`]: the visitor that turns an event's fields into `message k=v…` text (also used
//!   by the runtime's runc-style logger).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// An event's fields as text: the message, then ` name=value` for the others.
#[derive(Debug, Default)]
pub struct Message(pub String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

struct StderrLogger {
    program: &'static str,
    own_target: &'static str,
    debug: bool,
}

/// Install the stderr logger for `program` (shown on each line), whose own module paths
/// start with `own_target` (`barge_hub`); `debug_env` set to anything but `0` logs
/// everything from DEBUG. A second call keeps the first logger.
pub fn init_stderr(program: &'static str, own_target: &'static str, debug_env: &str) {
    let debug = std::env::var_os(debug_env).is_some_and(|v| v != "0");
    let _ = tracing::subscriber::set_global_default(StderrLogger {
        program,
        own_target,
        debug,
    });
}

impl Subscriber for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        if self.debug {
            return *m.level() <= Level::DEBUG;
        }
        let max = if m.target().starts_with(self.own_target) {
            Level::INFO
        } else {
            Level::WARN
        };
        *m.level() <= max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message::default();
        event.record(&mut msg);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let _ = writeln!(
            std::io::stderr(),
            "{} {} {level}: {}",
            barge_util::time::now_rfc3339(),
            self.program,
            msg.0
        );
    }
}
