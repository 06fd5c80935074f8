//! `barge-mapper`: `barge mapper` execs it. Serves the node's devices of the given
//! protocols over the edge's MQTT broker until SIGTERM or SIGINT.

use clap::Parser;

fn main() {
    let config = barge_mapper::config::Config::parse();
    logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("barge mapper: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(async {
        let shutdown = shutdown_signal()?;
        barge_mapper::mapper::run(config, shutdown).await
    });
    if let Err(e) = result {
        eprintln!("barge mapper: {e:#}");
        std::process::exit(1);
    }
}

/// Completes on SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("install the SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("install the SIGINT handler: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// A minimal `tracing` subscriber: one line per event on stderr
/// (`<time> barge-mapper <level>: <message>`); the mapper's own events from INFO, others'
/// from WARN (`BARGE_MAPPER_DEBUG=1`: everything from DEBUG).
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
        let debug = std::env::var_os("BARGE_MAPPER_DEBUG").is_some_and(|v| v != "0");
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
            let max = if m.target().starts_with("barge_mapper") {
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
                "{} barge-mapper {level}: {}",
                barge_util::time::now_rfc3339(),
                msg.0
            );
        }
    }
}
