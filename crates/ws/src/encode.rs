//! Whole frames, ready to write.
//!
//! Server frames are unmasked, so one encoded frame can be queued to every recipient of a
//! broadcast: [`Bytes`] clones share the allocation.

use bytes::Bytes;

use crate::close::{self, CloseFrame};
use crate::frame::{self, Opcode};

/// Encodes one frame. With `mask` (client role) the payload is masked in the output.
pub fn frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    let mut out =
        Vec::with_capacity(frame::header_len(payload.len(), mask.is_some()) + payload.len());
    frame::encode_header(&mut out, fin, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        frame::apply_mask(&mut out[start..], mask);
    }
    Bytes::from(out)
}

/// One whole compressed message (`deflated` from [`deflate::compress`](crate::deflate::compress)),
/// with RSV1 set.
pub fn compressed_frame(opcode: Opcode, deflated: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    let (header, header_len) = frame::header_bytes_with(true, opcode, deflated.len(), mask, true);
    let mut out = Vec::with_capacity(header_len + deflated.len());
    out.extend_from_slice(&header[..header_len]);
    let start = out.len();
    out.extend_from_slice(deflated);
    if let Some(mask) = mask {
        frame::apply_mask(&mut out[start..], mask);
    }
    Bytes::from(out)
}

/// A message in one frame, compressed if that makes it smaller (on a connection that negotiated
/// permessage-deflate).
pub fn message_frame(opcode: Opcode, payload: &[u8], compress: bool) -> Bytes {
    match compress
        .then(|| crate::deflate::compress(payload))
        .flatten()
    {
        Some(deflated) => compressed_frame(opcode, &deflated, None),
        None => frame(true, opcode, payload, None),
    }
}

/// A text message in one frame.
pub fn text_frame(text: &str, mask: Option<[u8; 4]>) -> Bytes {
    frame(true, Opcode::Text, text.as_bytes(), mask)
}

/// A binary message in one frame.
pub fn binary_frame(data: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    frame(true, Opcode::Binary, data, mask)
}

/// A pong echoing `payload` (truncated to the control-frame limit).
pub fn pong_frame(payload: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    frame(
        true,
        Opcode::Pong,
        &payload[..payload.len().min(frame::MAX_CONTROL_PAYLOAD)],
        mask,
    )
}

/// A ping carrying `payload` (truncated to the control-frame limit).
pub fn ping_frame(payload: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    frame(
        true,
        Opcode::Ping,
        &payload[..payload.len().min(frame::MAX_CONTROL_PAYLOAD)],
        mask,
    )
}

/// A close frame; `None` sends an empty payload (the peer reports 1005). A reason longer than
/// [`close::MAX_REASON_BYTES`] is cut on a character boundary.
pub fn close_frame(close: Option<&CloseFrame>, mask: Option<[u8; 4]>) -> Bytes {
    let Some(close) = close else {
        return frame(true, Opcode::Close, &[], mask);
    };
    let reason = close::truncate_reason(&close.reason);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&close.code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    frame(true, Opcode::Close, &payload, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, MessageDecoder, Role};

    #[test]
    fn server_frames_decode_on_the_client() {
        let mut wire = text_frame("hi", None).to_vec();
        let step = MessageDecoder::new(Role::Client, 64)
            .decode(&mut wire)
            .unwrap();
        assert_eq!(step.message, Some(Message::Text("hi".into())));
    }

    fn decode_on_the_client(wire: Bytes) -> Message {
        let mut wire = wire.to_vec();
        let step = MessageDecoder::new(Role::Client, 1 << 20)
            .decode(&mut wire)
            .unwrap();
        assert_eq!(step.consumed, wire.len(), "one whole frame");
        step.message.expect("a message")
    }

    #[test]
    fn binary_ping_and_pong_frames_carry_their_payload() {
        assert_eq!(
            decode_on_the_client(binary_frame(&[0, 1, 255], None)),
            Message::Binary(vec![0, 1, 255])
        );
        assert_eq!(
            decode_on_the_client(ping_frame(b"are you there", None)),
            Message::Ping(b"are you there".to_vec())
        );
        assert_eq!(
            decode_on_the_client(pong_frame(b"here", None)),
            Message::Pong(b"here".to_vec())
        );
    }

    #[test]
    fn control_payloads_are_cut_to_125_bytes() {
        let long = [9u8; 300];
        assert_eq!(
            decode_on_the_client(ping_frame(&long, None)),
            Message::Ping(vec![9; frame::MAX_CONTROL_PAYLOAD])
        );
        assert_eq!(
            decode_on_the_client(pong_frame(&long, None)),
            Message::Pong(vec![9; frame::MAX_CONTROL_PAYLOAD])
        );
    }

    #[test]
    fn close_reason_is_truncated() {
        let close = CloseFrame {
            code: 1000,
            reason: "x".repeat(200),
        };
        let mut wire = close_frame(Some(&close), None).to_vec();
        let step = MessageDecoder::new(Role::Client, 64)
            .decode(&mut wire)
            .unwrap();
        let Some(Message::Close(Some(frame))) = step.message else {
            panic!("not a close")
        };
        assert_eq!(frame.reason.len(), close::MAX_REASON_BYTES);
    }

    #[test]
    fn a_message_frame_is_compressed_only_when_asked_and_worth_it() {
        let long = "a message long enough to be worth compressing, a message long enough";
        let mut decoder = MessageDecoder::new(Role::Client, 1 << 20).with_compression();
        for (payload, compress, rsv1) in [
            (long, true, true),
            (long, false, false),
            ("short", true, false),
        ] {
            let mut wire = message_frame(Opcode::Text, payload.as_bytes(), compress).to_vec();
            assert_eq!(
                wire[0] & 0x40 != 0,
                rsv1,
                "{payload:?}, compress: {compress}"
            );
            let step = decoder.decode(&mut wire).unwrap();
            assert_eq!(step.consumed, wire.len());
            assert_eq!(step.message, Some(Message::Text(payload.into())));
        }
    }
}
