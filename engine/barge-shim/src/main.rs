//! `barge-shim`: see `barge_shim::shim`.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(barge_shim::shim::main());
}
