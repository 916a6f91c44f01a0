//! RFC 6455 WebSocket framing and handshake, as pure functions over byte slices.
//!
//! Dormouse owns its frame codec because the socket holder must not keep a read buffer per idle
//! connection: it reads into a buffer shared by every socket of a thread and only keeps a private
//! buffer while a frame is incomplete. Nothing here performs I/O, so every parser is easy to fuzz
//! and the same code serves the server, the raw benchmark baseline and the load generator.
//!
//! # Layout
//! - [`frame`] — frame headers (parse and encode) and payload masking.
//! - [`decoder`] — [`MessageDecoder`], which turns frames into whole messages: reassembles
//!   fragments, validates UTF-8, enforces the maximum message size and the control-frame rules.
//! - [`encode`] — whole frames ready to write, for both roles (server frames are unmasked and can
//!   be shared between recipients of a broadcast).
//! - [`close`] — close codes, what may be sent and what may be received, and close payloads.
//! - [`deflate`] — permessage-deflate without context takeover: negotiation, and one message
//!   compressed or inflated at a time by a compressor and an inflater per thread.
//! - [`handshake`] — validation of the HTTP upgrade request and the `Sec-WebSocket-Accept` key.
//! - [`relay`] — frames between two nodes of a cluster about a socket one relays for the other
//!   (its state, and its object moving), taken out of the stream before the client.
//! - [`error`] — [`ProtocolError`] and [`HandshakeError`], each mapped to the close code or the
//!   HTTP status a peer should see.
//!
//! # Example
//! ```
//! use dormouse_ws::{encode, MessageDecoder, Message, Role};
//!
//! // A client frame is masked; the server decodes it into a text message.
//! let mut wire = encode::text_frame("hello", Some([1, 2, 3, 4])).to_vec();
//! let mut decoder = MessageDecoder::new(Role::Server, 1 << 20);
//! let step = decoder.decode(&mut wire).unwrap();
//! assert_eq!(step.consumed, wire.len());
//! assert_eq!(step.message, Some(Message::Text("hello".into())));
//! ```

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod encode;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod relay;

pub use decoder::{DecodeStep, Message, MessageDecoder};
pub use error::{HandshakeError, ProtocolError};
pub use frame::{FrameHeader, Opcode};

/// Which end of the connection this codec speaks for.
///
/// RFC 6455 §5.1: a client masks every frame it sends and a server never masks; each side must
/// reject frames that break the rule for the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The accepting side: expects masked frames, sends unmasked ones.
    Server,
    /// The connecting side: expects unmasked frames, sends masked ones.
    Client,
}

/// The largest received message Cloudflare accepts (32 MiB), Dormouse's default.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 << 20;
