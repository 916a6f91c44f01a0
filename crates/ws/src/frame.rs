//! Frame headers (RFC 6455 §5.2) and payload masking (§5.3).

use crate::{ProtocolError, Role};

/// Longest possible frame header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation,
    /// First frame of a UTF-8 text message.
    Text,
    /// First frame of a binary message.
    Binary,
    /// Close handshake.
    Close,
    /// Heartbeat request.
    Ping,
    /// Heartbeat answer.
    Pong,
}

impl Opcode {
    /// Decodes the low nibble of the first header byte.
    pub fn from_bits(bits: u8) -> Result<Opcode, ProtocolError> {
        Ok(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The wire value of this opcode.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong are control frames: never fragmented, at most 125 bytes.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// What the frame carries.
    pub opcode: Opcode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Bytes taken by the header itself (2 to 14).
    pub header_len: usize,
    /// RSV1: the message this frame starts is compressed (permessage-deflate, RFC 7692).
    pub compressed: bool,
}

impl FrameHeader {
    /// Header plus payload, or `None` if that does not fit in memory on this platform.
    pub fn frame_len(&self) -> Option<usize> {
        usize::try_from(self.payload_len)
            .ok()?
            .checked_add(self.header_len)
    }
}

/// Parses the header at the start of `buf`, as seen by `role`.
///
/// Returns `Ok(None)` when `buf` does not yet hold the whole header. Rejects everything RFC 6455
/// forbids a peer to send: reserved bits without an extension, unknown opcodes, fragmented or
/// oversized control frames, a mask from the server or its absence from the client, and a 64-bit
/// length with its top bit set.
pub fn parse_header(buf: &[u8], role: Role) -> Result<Option<FrameHeader>, ProtocolError> {
    parse_header_with(buf, role, false)
}

/// [`parse_header`] on a connection where permessage-deflate was negotiated (`compression`):
/// RSV1 then marks the first frame of a compressed message, and is refused anywhere else
/// (RFC 7692 §6.1).
pub fn parse_header_with(
    buf: &[u8],
    role: Role,
    compression: bool,
) -> Result<Option<FrameHeader>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let compressed = b0 & RSV1 != 0;
    if b0 & (RSV2 | RSV3) != 0 || (compressed && !compression) {
        return Err(ProtocolError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0F)?;
    if compressed && (opcode.is_control() || opcode == Opcode::Continuation) {
        return Err(ProtocolError::MisplacedCompressionBit);
    }
    let masked = b1 & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame("client")),
        (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
        _ => {}
    }
    let (payload_len, mut at) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
        }
        127 => {
            let Some(bytes) = buf.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes.try_into().expect("slice of 8 bytes"));
            if len >> 63 != 0 {
                return Err(ProtocolError::InvalidLength);
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControl);
        }
        if payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::OversizedControl(payload_len));
        }
    }
    let mask = if masked {
        let Some(bytes) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some(bytes.try_into().expect("slice of 4 bytes"))
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
        header_len: at,
        compressed,
    }))
}

/// The reserved bits of a frame's first byte; RSV1 is permessage-deflate's "compressed" bit.
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;

/// Writes a frame header for a payload of `len` bytes into `out`.
pub fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let (header, header_len) = header_bytes(fin, opcode, len, mask);
    out.extend_from_slice(&header[..header_len]);
}

/// A frame header for a payload of `len` bytes, without allocating: the header is the first
/// `.1` bytes of the array. For writing a header and a payload that lives elsewhere in one
/// vectored write.
pub fn header_bytes(
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; MAX_HEADER_LEN], usize) {
    header_bytes_with(fin, opcode, len, mask, false)
}

/// [`header_bytes`] of a frame that starts a compressed message (RSV1 set) when `compressed`.
pub fn header_bytes_with(
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
    compressed: bool,
) -> ([u8; MAX_HEADER_LEN], usize) {
    let first = if fin { 0x80 } else { 0 } | if compressed { RSV1 } else { 0 } | opcode.bits();
    raw_header_bytes(first, len, mask)
}

/// A frame header whose first byte is `first` (FIN, reserved bits, opcode as they are): for
/// frames of an opcode [`Opcode`] does not name (`crate::relay`).
pub(crate) fn raw_header_bytes(
    first: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut header = [0u8; MAX_HEADER_LEN];
    header[0] = first;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = if len < 126 {
        header[1] = mask_bit | len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = mask_bit | 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = mask_bit | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(mask) = mask {
        header[at..at + 4].copy_from_slice(&mask);
        at += 4;
    }
    (header, at)
}

/// Length of the header [`encode_header`] writes for a payload of `len` bytes.
pub fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..126 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    if masked { base + 4 } else { base }
}

/// XORs `payload` with the masking key, in place (masking and unmasking are the same operation).
///
/// Works a machine word at a time: payloads of chat and game traffic are small, but a 32 MiB
/// binary message should not cost a byte-by-byte loop.
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let value = u64::from_ne_bytes((&*chunk).try_into().expect("chunk of 8 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    // Chunks of 8 keep the key aligned, so the tail starts at key offset 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_length_forms() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let mut out = Vec::new();
            encode_header(&mut out, true, Opcode::Binary, len, Some([9, 8, 7, 6]));
            assert_eq!(out.len(), header_len(len, true));
            let header = parse_header(&out, Role::Server).unwrap().unwrap();
            assert_eq!(header.payload_len, len as u64);
            assert_eq!(header.header_len, out.len());
            assert_eq!(header.mask, Some([9, 8, 7, 6]));
            // Every strict prefix is incomplete, never an error.
            for cut in 0..out.len() {
                assert_eq!(parse_header(&out[..cut], Role::Server), Ok(None));
            }
        }
    }

    #[test]
    fn rejects_what_a_peer_may_not_send() {
        let unmasked = [0x81, 0x00];
        assert_eq!(
            parse_header(&unmasked, Role::Server),
            Err(ProtocolError::UnmaskedFrame("client"))
        );
        let masked = [0x81, 0x80, 0, 0, 0, 0];
        assert_eq!(
            parse_header(&masked, Role::Client),
            Err(ProtocolError::MaskedServerFrame)
        );
        // RSV1 without permessage-deflate, RSV2, RSV3.
        for b0 in [0xC1, 0xA1, 0x91] {
            assert_eq!(
                parse_header(&[b0, 0x80], Role::Server),
                Err(ProtocolError::ReservedBits)
            );
        }
        assert_eq!(
            parse_header(&[0x83, 0x80], Role::Server),
            Err(ProtocolError::UnknownOpcode(3))
        );
        assert_eq!(
            parse_header(&[0x09, 0x80], Role::Server),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            parse_header(&[0x89, 0xFE, 0, 126], Role::Server),
            Err(ProtocolError::OversizedControl(126))
        );
        let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_header(&huge, Role::Server),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn mask_round_trips_at_every_length() {
        for len in 0..40 {
            let original: Vec<u8> = (0..len as u8).collect();
            let mut data = original.clone();
            apply_mask(&mut data, [0xA1, 0xB2, 0xC3, 0xD4]);
            for (i, (&masked, &plain)) in data.iter().zip(&original).enumerate() {
                assert_eq!(masked, plain ^ [0xA1, 0xB2, 0xC3, 0xD4][i % 4]);
            }
            apply_mask(&mut data, [0xA1, 0xB2, 0xC3, 0xD4]);
            assert_eq!(data, original);
        }
    }
}
