//! [`HolderError`]: what the holder's own operations (not the application's socket API, which
//! uses the SDK's errors with Cloudflare's messages) can fail with.

/// Failures of holder operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HolderError {
    /// Only hibernatable sockets change owners: a standard socket's events go to the instance
    /// that accepted it, and an unaccepted one has no owner yet.
    #[error("only a hibernatable WebSocket can be bound to another owner")]
    NotHibernatable,
    /// The socket's last event was already produced: there is nothing left to hand over.
    #[error("the WebSocket has ended")]
    Ended,
    /// The new owner holds as many hibernatable sockets as it may.
    #[error("the new owner already holds {0} WebSockets")]
    OwnerFull(usize),
}
