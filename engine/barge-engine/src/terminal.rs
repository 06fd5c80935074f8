//! The caller's terminal, for front ends attaching to a container with a TTY: raw mode
//! (restored when dropped) and the window size.

pub use barge_runtime::tty_proxy::{terminal_size, RawMode};
