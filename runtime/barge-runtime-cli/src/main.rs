//! `barge-runtime`: the lean, runc-compatible OCI runtime binary (no async runtime, no HTTP).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(barge_runtime_cli::main_from_env());
}
