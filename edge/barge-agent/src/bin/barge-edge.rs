//! `barge-edge`: `barge edge` execs it.

fn main() {
    eprintln!("barge edge: not implemented yet");
    std::process::exit(1);
}
