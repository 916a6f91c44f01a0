//! Durable Object ids.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The identity of one Durable Object: 32 bytes, shown as 64 lowercase hex digits.
///
/// Ids made from a name carry it ([`ObjectId::name`]); equality and hashing look at the bytes only,
/// so an id parsed back from its string equals the named one.
#[derive(Clone)]
pub struct ObjectId {
    raw: [u8; 32],
    name: Option<Arc<str>>,
}

impl ObjectId {
    /// Builds an id from its bytes; for runtimes, which also check that the bytes belong to the
    /// namespace.
    #[doc(hidden)]
    pub fn from_raw(raw: [u8; 32], name: Option<Arc<str>>) -> Self {
        ObjectId { raw, name }
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.raw
    }

    /// The name this id was derived from, for ids made by `id_from_name`/`get_by_name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The same id without its name (as `id_from_string` returns it).
    pub fn without_name(&self) -> ObjectId {
        ObjectId {
            raw: self.raw,
            name: None,
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.raw {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "ObjectId({self}, name = {name:?})"),
            None => write!(f, "ObjectId({self})"),
        }
    }
}

impl PartialEq for ObjectId {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for ObjectId {}

impl Hash for ObjectId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_64_hex_digits_and_ignores_name_in_equality() {
        let named = ObjectId::from_raw([0xAB; 32], Some("room".into()));
        assert_eq!(named.to_string(), "ab".repeat(32));
        assert_eq!(named.name(), Some("room"));
        assert_eq!(named, named.without_name());
    }
}
