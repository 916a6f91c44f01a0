//! Relay frames: what the node that runs an object tells the node that holds one of its sockets'
//! client connections, in the same stream as the socket's frames. They use a reserved data
//! opcode (RFC 6455 leaves 0x3 to extensions), so that the relaying node can take them out of the
//! stream before it reaches the client, which never sees one.
//!
//! - [`Relay::State`]: the socket's tags and attachment, sent when it is attached and whenever
//!   its attachment changes: what another node needs to adopt the socket.
//! - [`Relay::Moved`]: the socket's object left the node (it lost the object, or drains): the
//!   socket stays open and is to be adopted by the object's next owner.

use crate::error::ProtocolError;

/// The opcode of relay frames.
pub const OPCODE: u8 = 0x3;

const STATE: u8 = 1;
const MOVED: u8 = 2;

/// Tags of one socket at most (Cloudflare's limit), so that a relay frame's size is bounded.
const MAX_TAGS: usize = 10;

/// A relay message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// The socket's tags and attachment (serialized), as they are now.
    State {
        /// Its tags.
        tags: Vec<String>,
        /// Its serialized attachment, if it has one.
        attachment: Option<Vec<u8>>,
    },
    /// The socket's object left the sending node: adopt the socket elsewhere.
    Moved,
}

impl Relay {
    /// The message's payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Relay::Moved => vec![MOVED],
            Relay::State { tags, attachment } => {
                let mut out = vec![STATE, tags.len() as u8];
                for tag in tags {
                    out.extend_from_slice(&(tag.len() as u16).to_be_bytes());
                    out.extend_from_slice(tag.as_bytes());
                }
                match attachment {
                    None => out.push(0),
                    Some(bytes) => {
                        out.push(1);
                        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                        out.extend_from_slice(bytes);
                    }
                }
                out
            }
        }
    }

    /// The message as a frame (server to client: unmasked).
    pub fn frame(&self) -> Vec<u8> {
        let payload = self.encode();
        let (header, header_len) =
            crate::frame::raw_header_bytes(0x80 | OPCODE, payload.len(), None);
        let mut frame = Vec::with_capacity(header_len + payload.len());
        frame.extend_from_slice(&header[..header_len]);
        frame.extend_from_slice(&payload);
        frame
    }

    /// Reads back what [`encode`](Self::encode) wrote.
    pub fn decode(payload: &[u8]) -> Result<Relay, ProtocolError> {
        let bad = || ProtocolError::InvalidRelay;
        let mut reader = Reader(payload);
        match reader.byte().ok_or_else(bad)? {
            MOVED if payload.len() == 1 => Ok(Relay::Moved),
            STATE => {
                let count = reader.byte().ok_or_else(bad)? as usize;
                if count > MAX_TAGS {
                    return Err(bad());
                }
                let mut tags = Vec::with_capacity(count);
                for _ in 0..count {
                    let len = u16::from_be_bytes(reader.array().ok_or_else(bad)?) as usize;
                    let tag = reader.take(len).ok_or_else(bad)?;
                    tags.push(String::from_utf8(tag.to_vec()).map_err(|_| bad())?);
                }
                let attachment = match reader.byte().ok_or_else(bad)? {
                    0 => None,
                    1 => {
                        let len = u32::from_be_bytes(reader.array().ok_or_else(bad)?) as usize;
                        Some(reader.take(len).ok_or_else(bad)?.to_vec())
                    }
                    _ => return Err(bad()),
                };
                if !reader.0.is_empty() {
                    return Err(bad());
                }
                Ok(Relay::State { tags, attachment })
            }
            _ => Err(bad()),
        }
    }
}

/// Whether the frame whose first byte is `b0` is a relay frame.
pub fn is_relay(b0: u8) -> bool {
    b0 & 0x0F == OPCODE
}

/// The header of the relay frame at the start of `buf` (unmasked, from the owner): its length
/// and its payload's; `None` while incomplete.
pub fn header(buf: &[u8]) -> Option<(usize, u64)> {
    let b1 = *buf.get(1)?;
    Some(match b1 & 0x7F {
        126 => (
            4,
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
        ),
        127 => (10, u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        short => (2, u64::from(short)),
    })
}

/// A cursor over a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|bytes| bytes.try_into().expect("N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        for relay in [
            Relay::Moved,
            Relay::State {
                tags: vec![],
                attachment: None,
            },
            Relay::State {
                tags: vec!["room:lobby".into(), "é".into()],
                attachment: Some(vec![0, 1, 2, 255]),
            },
        ] {
            assert_eq!(Relay::decode(&relay.encode()).unwrap(), relay);
        }
    }

    #[test]
    fn a_frame_is_a_final_unmasked_relay_frame() {
        let frame = Relay::Moved.frame();
        assert!(is_relay(frame[0]));
        assert_eq!(frame, vec![0x83, 1, MOVED]);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let good = Relay::State {
            tags: vec!["a".into()],
            attachment: Some(vec![9; 5]),
        }
        .encode();
        for cut in 0..good.len() {
            assert!(Relay::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Relay::decode(&long).is_err());
        assert!(Relay::decode(&[9]).is_err());
        assert!(Relay::decode(&[MOVED, 0]).is_err());
        assert!(Relay::decode(&[STATE, 11]).is_err());
    }
}
