//! The registry: every object the runtime knows, active or hibernated.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use dormouse_sdk::ObjectId;

use crate::namespace::Namespace;
use crate::object::ObjectCell;
use crate::placement::Placement;

/// Shards of the registry: lookups from many connections contend on one lock per shard only.
const SHARDS: usize = 64;

/// The identity of an object across namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CellKey {
    pub(crate) namespace: u32,
    pub(crate) raw: [u8; 32],
}

/// Maps object identity to its cell. A cell lives here while the object has an instance, open
/// sockets or queued events; an empty, idle cell is retired and removed.
pub(crate) struct Registry {
    shards: Box<[Shard]>,
    /// Told of each object retired here, in cluster mode: another node may take it.
    placement: Option<Arc<dyn Placement>>,
}

/// One shard of the registry.
type Shard = Mutex<HashMap<CellKey, Arc<ObjectCell>, IdHasher>>;

/// Ids are HMAC outputs or random bytes, already uniformly distributed: hashing them again with
/// SipHash would only cost time.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher;

impl BuildHasher for IdHasher {
    type Hasher = IdHash;
    fn build_hasher(&self) -> IdHash {
        IdHash(0)
    }
}

/// Takes eight bytes of the id as the hash.
#[derive(Default)]
pub(crate) struct IdHash(u64);

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 ^= u64::from(n);
    }
}

impl Registry {
    pub(crate) fn new(placement: Option<Arc<dyn Placement>>) -> Self {
        Registry {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(IdHasher)))
                .collect(),
            placement,
        }
    }

    fn shard(&self, key: &CellKey) -> &Shard {
        &self.shards[key.raw[0] as usize % SHARDS]
    }

    /// The cell of `id`, created (empty and dormant) if the object is unknown.
    pub(crate) fn get_or_create(
        &self,
        namespace: &Arc<Namespace>,
        id: &ObjectId,
    ) -> Arc<ObjectCell> {
        let key = CellKey {
            namespace: namespace.index,
            raw: *id.as_bytes(),
        };
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let cell = shard
            .entry(key)
            .or_insert_with(|| ObjectCell::new(namespace.clone(), *id.as_bytes()));
        if let Some(name) = id.name() {
            cell.learn_name(name);
        }
        cell.clone()
    }

    /// The cell of `key`, if the object is known.
    pub(crate) fn get(&self, key: &CellKey) -> Option<Arc<ObjectCell>> {
        self.shard(key)
            .lock()
            .expect("registry lock")
            .get(key)
            .cloned()
    }

    /// Removes `cell` if it is dormant, has no sockets and no queued events. Callers that still hold
    /// the cell see it as retired and look the object up again.
    pub(crate) fn retire_if_empty(&self, cell: &Arc<ObjectCell>) {
        let key = cell.key();
        let mut shard = self.shard(&key).lock().expect("registry lock");
        let Some(current) = shard.get(&key) else {
            return;
        };
        if !Arc::ptr_eq(current, cell) {
            return;
        }
        if cell.retire_if_empty() {
            shard.remove(&key);
            drop(shard);
            if let Some(placement) = &self.placement {
                placement.release(cell.namespace.placed(&key.raw));
            }
        }
    }

    /// A snapshot of every cell, for metrics, diagnostics and sweeps.
    pub(crate) fn cells(&self) -> Vec<Arc<ObjectCell>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().expect("registry lock").values().cloned());
        }
        out
    }

    /// How many objects are known.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("registry lock").len())
            .sum()
    }
}
