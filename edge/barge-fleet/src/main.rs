//! `barge-fleet`: `barge fleet` execs it.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("barge fleet: not implemented yet");
    std::process::exit(1);
}
