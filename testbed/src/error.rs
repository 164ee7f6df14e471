//! The testbed's error type: what failed, and in which namespace or daemon.

use std::io;

/// Everything a lab, a router driver or a traffic probe can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("netlink {context}: {message}")]
    Netlink {
        /// What was being done.
        context: String,
        /// The error as rtnetlink reported it.
        message: String,
    },
    /// The lab has no namespace or link of that name.
    #[error("unknown {0}")]
    Unknown(String),
    /// A prerequisite (root, a router package) is missing on this machine.
    #[error("missing prerequisite: {0}")]
    Missing(String),
    /// A daemon or a command did something unexpected.
    #[error("{0}")]
    Daemon(String),
    /// Output of a router could not be parsed.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// Which output.
        what: String,
        /// Why.
        detail: String,
    },
    /// A topology file is invalid.
    #[error("topology: {0}")]
    Topology(String),
    /// A condition was not met in time.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: f64,
    },
}

/// Result with the testbed's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps an rtnetlink error with what was being done.
    pub fn netlink(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Netlink {
            context: context.into(),
            message: err.to_string(),
        }
    }

    /// A parse error of some router output.
    pub fn parse(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
