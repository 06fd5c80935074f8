//! `barge-mapper`: `barge mapper` execs it. Serves the node's devices of the given
//! protocols over the edge's MQTT broker until SIGTERM or SIGINT.

use clap::Parser;

fn main() {
    let config = barge_mapper::config::Config::parse();
    barge_log::init_stderr("barge-mapper", "barge_mapper", "BARGE_MAPPER_DEBUG");
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
