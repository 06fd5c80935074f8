//! `barge-hub`: `barge hub` execs it.

use clap::Parser;

fn main() {
    let config = barge_hub::config::Config::parse();
    barge_log::init_stderr("barge-hub", "barge_hub", "BARGE_HUB_DEBUG");
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
