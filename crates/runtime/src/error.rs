//! The runtime's error type, for operations the server and tests call (not application APIs,
//! which use the SDK's [`dormouse_sdk::Error`]).

/// `Result` with [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Failures of runtime-level operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No namespace is bound under that name.
    #[error("no Durable Object binding named {0:?}")]
    UnknownBinding(String),
    /// Two classes were registered under one binding.
    #[error("binding {0:?} is registered twice")]
    DuplicateBinding(String),
    /// The object is not in memory, or holds something that prevents hibernation.
    #[error("object cannot hibernate now: {0}")]
    NotHibernatable(String),
    /// The runtime is shutting down: objects take no more instructions.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// A 101 response whose socket is not one of this runtime's.
    #[error("the WebSocket in this response does not belong to this runtime")]
    ForeignSocket,
    /// The data directory or its catalog could not be used (or a migration failed).
    #[error(transparent)]
    Storage(#[from] dormouse_storage::StorageError),
}
