//! Errors of the codec, each carrying what the peer should be told.

use crate::close;

/// A received byte stream that breaks RFC 6455 or a configured limit.
///
/// Each variant maps to the close code the connection must be closed with
/// ([`ProtocolError::close_code`]); the `Display` text is suitable as a close reason and as the
/// error handed to `websocket_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame without a mask, or a server frame with one.
    #[error("{0} frame must be masked")]
    UnmaskedFrame(&'static str),
    /// A frame from the server side carried a mask.
    #[error("server frames must not be masked")]
    MaskedServerFrame,
    /// RSV1–3 set without a negotiated extension.
    #[error("reserved bits set in frame header (no extension was negotiated)")]
    ReservedBits,
    /// RSV1 on a control frame or a continuation: only a message's first frame may carry it.
    #[error("compression bit set on a control or continuation frame")]
    MisplacedCompressionBit,
    /// A compressed message that does not inflate (corrupt, or using a window it may not).
    #[error("compressed message does not inflate: {0}")]
    BadCompression(String),
    /// Opcode 3–7 or 11–15.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame with FIN clear.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame payload of {0} bytes exceeds 125")]
    OversizedControl(u64),
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is still in progress.
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A 64-bit length with the most significant bit set, or a length not in minimal form.
    #[error("invalid payload length encoding")]
    InvalidLength,
    /// A close frame whose payload is one byte long.
    #[error("close frame payload of 1 byte (must be 0 or at least 2)")]
    CloseTooShort,
    /// A close code a peer may not send.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A text message or close reason that is not UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// A message over the configured maximum.
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooBig {
        /// Size announced or reached so far.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// A relay frame between two nodes that does not hold what relay frames hold.
    #[error("malformed relay frame")]
    InvalidRelay,
}

impl ProtocolError {
    /// The close code to send for this error: 1009 for size, 1007 for bad UTF-8, 1002 otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::MessageTooBig { .. } => close::MESSAGE_TOO_BIG,
            ProtocolError::InvalidUtf8(_) => close::INVALID_PAYLOAD,
            _ => close::PROTOCOL_ERROR,
        }
    }
}

/// An HTTP request that claims to be a WebSocket upgrade but cannot be one, or an answer to one
/// that the server must not send.
///
/// The server answers these with [`HandshakeError::status`] and the `Display` text as the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET (RFC 6455 §4.1).
    #[error("WebSocket upgrade requires a GET request, not {0}")]
    MethodNotGet(String),
    /// Only HTTP/1.1 upgrades are supported.
    #[error("WebSocket upgrade requires HTTP/1.1")]
    WrongHttpVersion,
    /// `Connection` does not list `upgrade`.
    #[error("WebSocket upgrade requires a Connection header containing \"upgrade\"")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is absent.
    #[error("missing Sec-WebSocket-Version header (expected 13)")]
    MissingVersion,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version {0:?} (expected 13)")]
    UnsupportedVersion(String),
    /// `Sec-WebSocket-Key` is absent.
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// `Sec-WebSocket-Key` is not 16 bytes in base64.
    #[error("Sec-WebSocket-Key must be 16 random bytes in base64, got {0:?}")]
    InvalidKey(String),
    /// A response to a client handshake that does not accept it.
    #[error("server did not accept the WebSocket upgrade: {0}")]
    Rejected(String),
    /// The server chose a subprotocol the client did not offer (RFC 6455 §4.2.2: the client
    /// would fail the connection).
    #[error(
        "the server chose WebSocket subprotocol {chosen:?}, which the client did not offer (offered: {offered})"
    )]
    SubprotocolNotOffered {
        /// What the server chose.
        chosen: String,
        /// What the client offered, as listed.
        offered: String,
    },
    /// The server named more than one subprotocol; it must choose one.
    #[error("the server must choose one WebSocket subprotocol, not {0:?}")]
    SeveralSubprotocols(String),
}

impl HandshakeError {
    /// The HTTP status to answer with: 400 for a bad request, 500 for a bad answer of the
    /// server's own (its application is at fault, not the client).
    pub fn status(&self) -> http::StatusCode {
        match self {
            HandshakeError::SubprotocolNotOffered { .. }
            | HandshakeError::SeveralSubprotocols(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}
