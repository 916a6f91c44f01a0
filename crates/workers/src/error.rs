//! [`WorkersError`]: why a Workers project could not be loaded or served.

use std::path::PathBuf;

/// `Result` with [`WorkersError`].
pub type Result<T, E = WorkersError> = std::result::Result<T, E>;

/// Why a Workers project could not be loaded or served.
#[derive(Debug, thiserror::Error)]
pub enum WorkersError {
    /// The directory has no wrangler configuration.
    #[error("no wrangler.json, wrangler.jsonc or wrangler.toml in {}", .0.display())]
    NoProject(PathBuf),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The configuration is wrong; the message names the key.
    #[error("{}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A module failed to compile, resolve or evaluate; the message gives `file:line:column`.
    #[error("{0}")]
    Load(String),
    /// A binding names a class the main module does not export.
    #[error(
        "the binding `{binding}` names the class `{class}`, which the main module does not export"
    )]
    MissingClass {
        /// The binding.
        binding: String,
        /// The class it names.
        class: String,
    },
    /// The engine's thread could not start or stopped.
    #[error("the JavaScript engine is not running: {0}")]
    Engine(String),
}
