//! [`SocketSet`]: the sockets of one owner.

use std::collections::BTreeMap;
use std::sync::Arc;

use dormouse_sdk::WebSocketId;

use crate::record::SocketRecord;

/// Every accepted socket of an owner, in accept order (ids increase).
///
/// A hibernatable socket stays here until its close or error event is handed to the object, so
/// that a woken object's constructor still sees the socket that is closing. Standard sockets are
/// here too (they pin the object in memory), but are never listed to the application.
#[derive(Default, Debug)]
pub struct SocketSet {
    /// The socket and whether it is hibernatable.
    entries: BTreeMap<WebSocketId, (Arc<SocketRecord>, bool)>,
    standard: usize,
    /// Bumped whenever a socket joins or leaves.
    changes: u64,
}

impl SocketSet {
    /// Adds `record`; `hibernatable` says how it was accepted.
    pub fn insert(&mut self, record: Arc<SocketRecord>, hibernatable: bool) {
        if !hibernatable {
            self.standard += 1;
        }
        self.changes += 1;
        self.entries.insert(record.id(), (record, hibernatable));
    }

    /// Removes the socket `id`, if it is here.
    pub fn remove(&mut self, id: WebSocketId) -> Option<Arc<SocketRecord>> {
        let (record, hibernatable) = self.entries.remove(&id)?;
        if !hibernatable {
            self.standard -= 1;
        }
        self.changes += 1;
        Some(record)
    }

    /// Whether the socket `id` is here.
    pub fn contains(&self, id: WebSocketId) -> bool {
        self.entries.contains_key(&id)
    }

    /// Whether no socket is here.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Standard sockets (each keeps its owner in memory).
    pub fn standard_count(&self) -> usize {
        self.standard
    }

    /// A number that changes whenever a socket joins or leaves the set.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Hibernatable sockets.
    pub fn hibernatable_count(&self) -> usize {
        self.entries.len() - self.standard
    }

    /// Hibernatable sockets, all or those carrying `tag`, oldest first.
    pub fn hibernatable<'a>(
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
    pub fn take_all(&mut self) -> Vec<Arc<SocketRecord>> {
        self.standard = 0;
        self.changes += 1;
        std::mem::take(&mut self.entries)
            .into_values()
            .map(|(record, _)| record)
            .collect()
    }

    /// Removes and returns the standard sockets (an eviction closes them).
    pub fn take_standard(&mut self) -> Vec<Arc<SocketRecord>> {
        let ids: Vec<WebSocketId> = self
            .entries
            .iter()
            .filter(|(_, (_, h))| !h)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Every socket, for the liveness sweep.
    pub fn all(&self) -> impl Iterator<Item = &Arc<SocketRecord>> {
        self.entries.values().map(|(record, _)| record)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dormouse_sdk::host::SocketHost;

    use crate::testing::plain_group;

    #[tokio::test]
    async fn the_set_counts_each_kind_and_each_change() {
        let (_owner, group) = plain_group();
        let (first, second, standard) =
            (group.new_socket(), group.new_socket(), group.new_socket());
        assert!(group.sockets().is_empty());
        assert_eq!(group.sockets().changes(), 0);
        first.accept_hibernatable(&["red"]).unwrap();
        second.accept_hibernatable(&["blue"]).unwrap();
        standard.clone().accept().unwrap();
        assert!(first.is_hibernatable() && !standard.is_hibernatable());
        {
            let set = group.sockets();
            assert!(!set.is_empty());
            assert_eq!(set.changes(), 3);
            assert_eq!((set.hibernatable_count(), set.standard_count()), (2, 1));
            assert!(set.contains(first.id()) && set.contains(standard.id()));
            let listed: Vec<_> = set.hibernatable(None).map(|s| s.id()).collect();
            assert_eq!(
                listed,
                [first.id(), second.id()],
                "standard sockets are never listed"
            );
            let blue: Vec<_> = set.hibernatable(Some("blue")).map(|s| s.id()).collect();
            assert_eq!(blue, [second.id()]);
        }
        let removed = group.sockets().remove(standard.id()).unwrap();
        assert!(Arc::ptr_eq(&removed, &standard));
        {
            let set = group.sockets();
            assert_eq!(set.changes(), 4);
            assert_eq!((set.hibernatable_count(), set.standard_count()), (2, 0));
            assert!(!set.contains(standard.id()));
        }
        assert!(
            group.sockets().remove(standard.id()).is_none(),
            "already gone"
        );
        assert_eq!(
            group.sockets().changes(),
            4,
            "removing nothing changes nothing"
        );
        let all = group.sockets().take_all();
        assert_eq!(all.len(), 2);
        let set = group.sockets();
        assert!(set.is_empty());
        assert_eq!(set.changes(), 5);
        assert_eq!((set.hibernatable_count(), set.standard_count()), (0, 0));
    }

    #[tokio::test]
    async fn taking_the_standard_sockets_leaves_the_hibernatable_ones() {
        let (_owner, group) = plain_group();
        let (kept, standard) = (group.new_socket(), group.new_socket());
        kept.accept_hibernatable(&[]).unwrap();
        standard.clone().accept().unwrap();
        let taken: Vec<_> = group
            .sockets()
            .take_standard()
            .iter()
            .map(|s| s.id())
            .collect();
        assert_eq!(taken, [standard.id()]);
        let set = group.sockets();
        assert_eq!((set.hibernatable_count(), set.standard_count()), (1, 0));
        assert!(set.contains(kept.id()));
    }
}
