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
        // One write of the 64 digits: listings format thousands of ids at a time.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(&self.raw) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
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
        let mut raw = [0u8; 32];
        raw[..4].copy_from_slice(&[0x01, 0x9f, 0xe0, 0x5c]);
        let shown = ObjectId::from_raw(raw, None).to_string();
        assert_eq!(shown, format!("019fe05c{}", "0".repeat(56)));
    }
}
