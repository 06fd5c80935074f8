//! A synchronous client of the CNI (Container Network Interface) exec protocol, spec versions
//! 0.3.0 to 1.1.0.
//!
//! - [`conf`]: network configuration lists (`.conflist`, legacy `.conf`), loading and validation;
//! - [`exec`]: finding a plugin binary and running it once with a timeout;
//! - [`ops`]: ADD/DEL/CHECK/STATUS/GC over a list's plugin chain, and VERSION;
//! - [`result`]: what plugins print (results, error objects, version answers);
//! - [`error`]: the error type.
#![forbid(unsafe_code)]

pub mod command;
pub mod conf;
pub mod error;
pub mod exec;
pub mod ops;
pub mod result;
pub mod version;

#[cfg(test)]
mod testutil;

pub use command::Command;
pub use conf::NetworkConfigList;
pub use error::{Error, Result};
pub use ops::{Attachment, Cni, RuntimeConf};
pub use result::{CniResult, VersionInfo};
