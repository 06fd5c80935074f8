//! The crate's error type: every variant names what failed and on what.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::command::Command;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking CNI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plugin exited unsuccessfully. `code`, `msg` and `details` come from the CNI error object
    /// it printed; when it printed none, `code` is `None` and `msg` describes the exit and carries
    /// whatever the plugin wrote.
    #[error("{}", plugin_message(.network, .plugin, *.command, *.code, .msg, .details))]
    Plugin {
        /// The network (config list) name; `None` for VERSION.
        network: Option<String>,
        /// The plugin type (binary name).
        plugin: String,
        /// The command that failed.
        command: Command,
        /// The CNI error code, when the plugin printed an error object.
        code: Option<u64>,
        /// The error message.
        msg: String,
        /// Extra details (may be empty).
        details: String,
    },
    /// The plugin did not finish within the timeout; its whole process group was killed.
    #[error("{}: did not answer within {} (killed)", at(.network, .plugin, *.command), human_duration(*.after))]
    Timeout {
        /// The network name; `None` for VERSION.
        network: Option<String>,
        /// The plugin type.
        plugin: String,
        /// The command that was running.
        command: Command,
        /// The timeout that expired.
        after: Duration,
    },
    /// No executable plugin binary of that name in any plugin directory.
    #[error("{}CNI plugin {plugin:?} not found in {}", network_prefix(.network), list_dirs(.dirs))]
    NotFound {
        /// The network that needed the plugin, when known.
        network: Option<String>,
        /// The plugin type looked for.
        plugin: String,
        /// The directories searched, in order.
        dirs: Vec<PathBuf>,
    },
    /// The plugin succeeded but its output is not what the protocol requires.
    #[error("{}: {msg}", at(.network, .plugin, *.command))]
    BadOutput {
        /// The network name; `None` for VERSION.
        network: Option<String>,
        /// The plugin type.
        plugin: String,
        /// The command that ran.
        command: Command,
        /// What is wrong with the output.
        msg: String,
    },
    /// A network configuration (or runtime configuration) is invalid.
    #[error("{origin}: {msg}")]
    Config {
        /// Where the configuration came from (a file path, or a description).
        origin: String,
        /// What is wrong with it.
        msg: String,
    },
    /// An operating-system call failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. "cannot read network config".
        what: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The CNI error code of a [`Error::Plugin`] error object, if any.
    pub fn code(&self) -> Option<u64> {
        match self {
            Error::Plugin { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether this is a [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Records the network in errors that can be raised before the network is known
    /// ([`Error::NotFound`]); other errors are returned unchanged.
    pub(crate) fn in_network(self, name: &str) -> Self {
        match self {
            Error::NotFound {
                network: None,
                plugin,
                dirs,
            } => Error::NotFound {
                network: Some(name.to_owned()),
                plugin,
                dirs,
            },
            other => other,
        }
    }
}

/// `network "n": plugin bridge (ADD)`, or `plugin bridge (VERSION)` without a network.
pub(crate) fn at(network: &Option<String>, plugin: &str, command: Command) -> String {
    format!("{}plugin {plugin} ({command})", network_prefix(network))
}

fn network_prefix(network: &Option<String>) -> String {
    match network {
        Some(name) => format!("network {name:?}: "),
        None => String::new(),
    }
}

fn plugin_message(
    network: &Option<String>,
    plugin: &str,
    command: Command,
    code: Option<u64>,
    msg: &str,
    details: &str,
) -> String {
    let mut out = format!("{}: {msg}", at(network, plugin, command));
    if !details.is_empty() {
        out.push_str(": ");
        out.push_str(details);
    }
    if let Some(code) = code {
        out.push_str(&format!(" (CNI error code {code})"));
    }
    out
}

fn list_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "(no plugin directories configured)".to_owned();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `5s` for whole seconds, `300ms` otherwise.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_error_display_names_network_plugin_command_and_code() {
        let e = Error::Plugin {
            network: Some("barge".into()),
            plugin: "bridge".into(),
            command: Command::Add,
            code: Some(11),
            msg: "failed to allocate".into(),
            details: "range full".into(),
        };
        assert_eq!(
            e.to_string(),
            "network \"barge\": plugin bridge (ADD): failed to allocate: range full (CNI error code 11)"
        );
        assert_eq!(e.code(), Some(11));
    }

    #[test]
    fn timeout_and_not_found_display() {
        let e = Error::Timeout {
            network: Some("barge".into()),
            plugin: "bridge".into(),
            command: Command::Del,
            after: Duration::from_secs(5),
        };
        assert_eq!(
            e.to_string(),
            "network \"barge\": plugin bridge (DEL): did not answer within 5s (killed)"
        );
        assert!(e.is_timeout());
        let e = Error::NotFound {
            network: None,
            plugin: "nope".into(),
            dirs: vec!["/a".into(), "/b".into()],
        }
        .in_network("n1");
        assert_eq!(
            e.to_string(),
            "network \"n1\": CNI plugin \"nope\" not found in /a, /b"
        );
        assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
    }
}
