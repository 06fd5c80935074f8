//! `barge-shim`: see `barge_shim::shim`.

fn main() {
    std::process::exit(barge_shim::shim::main());
}
