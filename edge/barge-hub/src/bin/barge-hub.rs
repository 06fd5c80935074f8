//! `barge-hub`: `barge hub` execs it.

use clap::Parser;

fn main() {
    let config = barge_hub::config::Config::parse();
    logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("barge hub: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(barge_hub::run::run(config)) {
        eprintln!("barge hub: {e:#}");
        std::process::exit(1);
    }
}

/// A minimal `tracing` subscriber: one line per event on stderr
/// (`<time> <level> <message>`); the hub's own events from INFO, others' from WARN
/// (`BARGE_HUB_DEBUG=1`: everything from DEBUG).
mod logging {
    use std::fmt::Write as _;
    use std::io::Write as _;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    struct Logger {
        debug: bool,
    }

    pub fn init() {
        let debug = std::env::var_os("BARGE_HUB_DEBUG").is_some_and(|v| v != "0");
        let _ = tracing::subscriber::set_global_default(Logger { debug });
    }

    struct Message(String);

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

    impl Subscriber for Logger {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            if self.debug {
                return *m.level() <= Level::DEBUG;
            }
            let max = if m.target().starts_with("barge_hub") {
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
            let mut msg = Message(String::new());
            event.record(&mut msg);
            let level = event.metadata().level().as_str().to_ascii_lowercase();
            let _ = writeln!(
                std::io::stderr(),
                "{} barge-hub {level}: {}",
                barge_util::time::now_rfc3339(),
                msg.0
            );
        }
    }
}
