//! `barge-hub`: `barge hub` execs it.

use clap::Parser;

fn main() {
    let config = barge_hub::config::Config::parse();
    eprintln!("barge hub: not implemented yet ({config:?})");
    std::process::exit(1);
}
