//! What the engine waits for from JavaScript: each event handed to a handler gets a token, and
//! the prelude settles the token with the handler's outcome (at once for a synchronous handler,
//! when its promise settles otherwise).

use bytes::Bytes;
use dormouse_sdk::Response;
use dormouse_sdk::host::Reply;
use tokio::sync::oneshot;

use super::state::Owner;

/// An event whose handler has not finished.
pub(crate) enum Settlement {
    /// An object's `fetch`: the answer goes to the caller.
    Fetch {
        owner: Owner,
        reply: Reply<Response>,
        lingering: bool,
    },
    /// An RPC method: the answer is encoded for the caller (see `natives::dispatch`).
    Call {
        owner: Owner,
        reply: Reply<Bytes>,
        lingering: bool,
    },
    /// A WebSocket handler: only a failure is reported (in the log).
    Handler {
        owner: Owner,
        handler: &'static str,
        lingering: bool,
    },
    /// An alarm handler: its outcome decides whether the alarm is retried.
    Alarm { owner: Owner },
    /// The Worker's `fetch`.
    Worker { reply: oneshot::Sender<Response> },
}

impl Settlement {
    pub(crate) fn owner(&self) -> Owner {
        match self {
            Settlement::Fetch { owner, .. }
            | Settlement::Call { owner, .. }
            | Settlement::Handler { owner, .. }
            | Settlement::Alarm { owner } => *owner,
            Settlement::Worker { .. } => Owner::Worker(0),
        }
    }

    /// Still pending after its turn ended: it keeps its object in memory until it settles.
    pub(crate) fn lingering(&self) -> bool {
        match self {
            Settlement::Fetch { lingering, .. }
            | Settlement::Call { lingering, .. }
            | Settlement::Handler { lingering, .. } => *lingering,
            Settlement::Alarm { .. } | Settlement::Worker { .. } => false,
        }
    }

    /// Marks it as outliving its turn; false if it cannot linger (it holds its turn open).
    pub(crate) fn linger(&mut self) -> bool {
        match self {
            Settlement::Fetch { lingering, .. }
            | Settlement::Call { lingering, .. }
            | Settlement::Handler { lingering, .. } => {
                *lingering = true;
                true
            }
            Settlement::Alarm { .. } | Settlement::Worker { .. } => false,
        }
    }
}
