//! What several barge crates need and none of them owns, kept free of dependencies so the
//! runtime, the shim and the image layer can all use it.
#![forbid(unsafe_code)]

pub mod fs;
pub mod mountinfo;
pub mod process;
pub mod size;
pub mod time;
