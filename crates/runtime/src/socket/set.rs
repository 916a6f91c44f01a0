//! The sockets of one object.

use std::collections::BTreeMap;
use std::sync::Arc;

use dormouse_sdk::WebSocketId;

use super::SocketRecord;

/// Every accepted socket of an object, in accept order (ids increase).
///
/// A hibernatable socket stays here until its close or error event is handed to the object, so
/// that a woken object's constructor still sees the socket that is closing. Standard sockets are
/// here too (they pin the object in memory), but are never listed to the application.
#[derive(Default)]
pub(crate) struct SocketSet {
    /// The socket and whether it is hibernatable.
    entries: BTreeMap<WebSocketId, (Arc<SocketRecord>, bool)>,
    standard: usize,
    /// Bumped whenever a socket joins or leaves.
    changes: u64,
}

impl SocketSet {
    pub(crate) fn insert(&mut self, record: Arc<SocketRecord>, hibernatable: bool) {
        if !hibernatable {
            self.standard += 1;
        }
        self.changes += 1;
        self.entries.insert(record.id(), (record, hibernatable));
    }

    pub(crate) fn remove(&mut self, id: WebSocketId) -> Option<Arc<SocketRecord>> {
        let (record, hibernatable) = self.entries.remove(&id)?;
        if !hibernatable {
            self.standard -= 1;
        }
        self.changes += 1;
        Some(record)
    }

    pub(crate) fn contains(&self, id: WebSocketId) -> bool {
        self.entries.contains_key(&id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn standard_count(&self) -> usize {
        self.standard
    }

    /// A number that changes whenever a socket joins or leaves the set.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    pub(crate) fn hibernatable_count(&self) -> usize {
        self.entries.len() - self.standard
    }

    /// Hibernatable sockets, all or those carrying `tag`, oldest first.
    pub(crate) fn hibernatable<'a>(
        &'a self,
        tag: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<SocketRecord>> + 'a {
        self.entries
            .values()
            .filter(move |(record, hibernatable)| {
                *hibernatable && tag.is_none_or(|tag| record.has_tag(tag))
            })
            .map(|(record, _)| record)
    }

    /// Removes and returns every socket (a reset closes them all).
    pub(crate) fn take_all(&mut self) -> Vec<Arc<SocketRecord>> {
        self.standard = 0;
        self.changes += 1;
        std::mem::take(&mut self.entries)
            .into_values()
            .map(|(record, _)| record)
            .collect()
    }

    /// Removes and returns the standard sockets (an eviction closes them).
    pub(crate) fn take_standard(&mut self) -> Vec<Arc<SocketRecord>> {
        let ids: Vec<WebSocketId> = self
            .entries
            .iter()
            .filter(|(_, (_, h))| !h)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Every socket, for the liveness sweep.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<SocketRecord>> {
        self.entries.values().map(|(record, _)| record)
    }
}
