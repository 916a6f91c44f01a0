//! The server's error type.

use std::path::PathBuf;

/// `Result` with [`ServerError`].
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Failures to start or run a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory could not be created or locked.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The admin address is reachable from other machines but has no token.
    #[error(
        "the admin address {addr} is not on loopback, and anyone who reaches it could read and reset every object: set --admin-token (or DORMOUSE_ADMIN_TOKEN), or bind it to 127.0.0.1"
    )]
    AdminWithoutToken {
        /// The admin address.
        addr: std::net::SocketAddr,
    },
    /// The runtime refused its configuration.
    #[error(transparent)]
    Runtime(#[from] dormouse_runtime::RuntimeError),
}
