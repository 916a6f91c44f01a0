//! [`GuestClass`]: how the runtime hosts a class that is not a Rust [`DurableObject`]
//! (a JavaScript class, run by an engine of its own).
//!
//! [`DurableObject`]: dormouse_sdk::DurableObject

use std::fmt;
use std::sync::Arc;

use dormouse_holder::CloseReply;
use dormouse_sdk::{Env, Guest, State};

/// Builds an instance of a class; an `Err` is a constructor that failed (the object is reset).
pub(crate) type Factory = Arc<dyn Fn(State, Env) -> Result<Box<dyn Guest>, String> + Send + Sync>;

/// A class for [`RuntimeBuilder::guest_class`](crate::RuntimeBuilder::guest_class).
pub struct GuestClass {
    pub(crate) binding: String,
    pub(crate) class: String,
    pub(crate) unique_key: String,
    pub(crate) factory: Factory,
    pub(crate) executor: Option<tokio::runtime::Handle>,
    pub(crate) close_reply: CloseReply,
}

impl GuestClass {
    /// The class `class`, bound as `binding`, whose instances `factory` builds. Its ids are keyed
    /// by the class name.
    pub fn new(
        binding: &str,
        class: &str,
        factory: impl Fn(State, Env) -> Result<Box<dyn Guest>, String> + Send + Sync + 'static,
    ) -> Self {
        GuestClass {
            binding: binding.to_owned(),
            class: class.to_owned(),
            unique_key: class.to_owned(),
            factory: Arc::new(factory),
            executor: None,
            close_reply: CloseReply::default(),
        }
    }

    /// Keys the class's ids by `key` instead of the class name.
    pub fn unique_key(mut self, key: &str) -> Self {
        self.unique_key = key.to_owned();
        self
    }

    /// Runs the class's objects (their turns, their handlers) on `executor`, for guests whose
    /// instances live on one thread (a JavaScript engine). By default they run on the ambient
    /// tokio runtime, like Rust objects.
    pub fn executor(mut self, executor: tokio::runtime::Handle) -> Self {
        self.executor = Some(executor);
        self
    }

    /// When clients' close frames are answered (default: at once).
    pub fn close_reply(mut self, close_reply: CloseReply) -> Self {
        self.close_reply = close_reply;
        self
    }
}

impl fmt::Debug for GuestClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestClass")
            .field("binding", &self.binding)
            .field("class", &self.class)
            .field("close_reply", &self.close_reply)
            .finish_non_exhaustive()
    }
}
