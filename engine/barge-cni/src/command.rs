//! The CNI commands (the value of `CNI_COMMAND`).

use std::fmt;

/// One CNI operation, as passed to a plugin in `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Attach a container to a network.
    Add,
    /// Detach a container from a network.
    Del,
    /// Verify that an attachment is still as ADD left it (0.4.0 and later).
    Check,
    /// Ask whether the plugin is ready to serve ADDs (1.1.0 and later).
    Status,
    /// Release resources of attachments that no longer exist (1.1.0 and later).
    Gc,
    /// Ask which spec versions the plugin supports.
    Version,
}

impl Command {
    /// The wire name, e.g. `"ADD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
