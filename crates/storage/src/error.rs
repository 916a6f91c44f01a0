//! The storage error type.

/// `Result` with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Failures of storage operations. The `Display` text is meant for the application developer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A limit was exceeded (key or value size, statement size, number of bindings, …).
    #[error("{0}")]
    Limit(String),
    /// The operation is not allowed (BEGIN in SQL, access to internal tables, …).
    #[error("{0}")]
    Forbidden(String),
    /// An argument is invalid (list options, alarm time, …).
    #[error("{0}")]
    Invalid(String),
    /// SQLite reported an error.
    #[error("SQL error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A file of the data directory could not be created, moved or removed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The migrations in the configuration do not fit what was applied before.
    #[error("migrations: {0}")]
    Migration(String),
    /// A shipped commit's bytes are not a commit
    /// ([`CommitPages::decode`](crate::CommitPages::decode)).
    #[error("corrupt shipped commit: {0}")]
    CorruptCommit(String),
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}
