//! Frames to messages: fragment reassembly, UTF-8 validation and size limits.

use crate::close::{self, CloseFrame};
use crate::deflate;
use crate::frame::{self, Opcode};
use crate::{ProtocolError, Role};

/// A whole message as the application (or the runtime, for control frames) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A complete, UTF-8-validated text message.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping; the payload must be echoed in a pong.
    Ping(Vec<u8>),
    /// A pong (an answer to our ping, or an unsolicited heartbeat).
    Pong(Vec<u8>),
    /// A close frame; `None` when it carried no status code (reported as 1005).
    Close(Option<CloseFrame>),
}

/// The outcome of one [`MessageDecoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeStep {
    /// Bytes of the input consumed; 0 when more input is needed.
    pub consumed: usize,
    /// The message completed by the consumed frame, if any. A consumed frame that only extends a
    /// fragmented message yields `None`.
    pub message: Option<Message>,
    /// When nothing was consumed: the number of bytes the next frame needs in total, if the header
    /// was complete enough to tell. Lets the caller reserve a private buffer exactly once.
    pub needed: Option<usize>,
    /// The completed message came compressed (permessage-deflate) and was inflated.
    pub inflated: bool,
}

/// A fragmented message in progress. Boxed so that an idle connection's decoder is one pointer.
#[derive(Debug)]
struct Fragments {
    text: bool,
    /// The message's first frame had RSV1 set: `data` is deflated.
    compressed: bool,
    data: Vec<u8>,
}

/// Per-connection decoding state.
///
/// Idle, it holds no buffer: the caller owns the bytes, and a fragmented message is the only
/// thing kept between frames.
#[derive(Debug)]
pub struct MessageDecoder {
    role: Role,
    max_message_size: usize,
    /// permessage-deflate was negotiated: compressed messages are inflated (within the limit).
    compression: bool,
    fragments: Option<Box<Fragments>>,
}

impl MessageDecoder {
    /// A decoder for `role` that rejects messages larger than `max_message_size` bytes.
    pub fn new(role: Role, max_message_size: usize) -> Self {
        MessageDecoder {
            role,
            max_message_size,
            compression: false,
            fragments: None,
        }
    }

    /// The same decoder on a connection where permessage-deflate was negotiated: messages whose
    /// first frame carries RSV1 are inflated, and their inflated size counts against the limit.
    pub fn with_compression(mut self) -> Self {
        self.compression = true;
        self
    }

    /// The configured limit.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Decodes at most one frame from the start of `buf`, unmasking its payload in place.
    ///
    /// A message over the limit is rejected as soon as its header announces it, before any of its
    /// payload has to be buffered.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<DecodeStep, ProtocolError> {
        let Some(header) = frame::parse_header_with(buf, self.role, self.compression)? else {
            return Ok(DecodeStep {
                consumed: 0,
                message: None,
                needed: None,
                inflated: false,
            });
        };
        if !header.opcode.is_control() {
            let so_far = self.fragments.as_ref().map_or(0, |f| f.data.len() as u64);
            let size = so_far.saturating_add(header.payload_len);
            if size > self.max_message_size as u64 {
                return Err(ProtocolError::MessageTooBig {
                    size,
                    max: self.max_message_size,
                });
            }
        }
        let frame_len = header.frame_len().ok_or(ProtocolError::InvalidLength)?;
        if buf.len() < frame_len {
            return Ok(DecodeStep {
                consumed: 0,
                message: None,
                needed: Some(frame_len),
                inflated: false,
            });
        }
        let payload = &mut buf[header.header_len..frame_len];
        if let Some(mask) = header.mask {
            frame::apply_mask(payload, mask);
        }
        let compressed = match header.opcode {
            Opcode::Continuation => self.fragments.as_ref().is_some_and(|f| f.compressed),
            _ => header.compressed,
        };
        let message = self.on_frame(header.fin, header.opcode, header.compressed, payload)?;
        Ok(DecodeStep {
            consumed: frame_len,
            inflated: compressed && message.is_some(),
            message,
            needed: None,
        })
    }

    fn on_frame(
        &mut self,
        fin: bool,
        opcode: Opcode,
        compressed: bool,
        payload: &[u8],
    ) -> Result<Option<Message>, ProtocolError> {
        match opcode {
            Opcode::Ping => Ok(Some(Message::Ping(payload.to_vec()))),
            Opcode::Pong => Ok(Some(Message::Pong(payload.to_vec()))),
            Opcode::Close => Ok(Some(Message::Close(close::parse_payload(payload)?))),
            Opcode::Text | Opcode::Binary => {
                if self.fragments.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let text = opcode == Opcode::Text;
                if fin {
                    let data = self.payload_of(compressed, payload.to_vec())?;
                    return finish(text, data).map(Some);
                }
                self.fragments = Some(Box::new(Fragments {
                    text,
                    compressed,
                    data: payload.to_vec(),
                }));
                Ok(None)
            }
            Opcode::Continuation => {
                let fragments = self
                    .fragments
                    .as_mut()
                    .ok_or(ProtocolError::UnexpectedContinuation)?;
                fragments.data.extend_from_slice(payload);
                if !fin {
                    return Ok(None);
                }
                let Fragments {
                    text,
                    compressed,
                    data,
                } = *self.fragments.take().expect("checked above");
                let data = self.payload_of(compressed, data)?;
                finish(text, data).map(Some)
            }
        }
    }

    /// A whole message's payload as sent: inflated if it was compressed.
    fn payload_of(&self, compressed: bool, data: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
        if compressed {
            deflate::inflate(&data, self.max_message_size)
        } else {
            Ok(data)
        }
    }
}

fn finish(text: bool, data: Vec<u8>) -> Result<Message, ProtocolError> {
    if !text {
        return Ok(Message::Binary(data));
    }
    if simdutf8::basic::from_utf8(&data).is_err() {
        return Err(ProtocolError::InvalidUtf8("text message"));
    }
    Ok(Message::Text(
        String::from_utf8(data).expect("validated above"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;
    use bytes::Bytes;

    const MASK: Option<[u8; 4]> = Some([0x37, 0xFA, 0x21, 0x3D]);

    fn decode_all(
        decoder: &mut MessageDecoder,
        mut wire: Vec<u8>,
    ) -> Result<Vec<Message>, ProtocolError> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let step = decoder.decode(&mut wire[at..])?;
            assert!(step.consumed > 0, "incomplete input in test");
            at += step.consumed;
            out.extend(step.message);
        }
        Ok(out)
    }

    #[test]
    fn compressed_messages_inflate_whole_or_in_fragments_within_the_limit() {
        let text = "the same words again, the same words again, the same words again";
        let deflated = deflate::compress(text.as_bytes()).unwrap();
        let mut wire = encode::compressed_frame(Opcode::Text, &deflated, MASK).to_vec();
        // A fragmented compressed message: RSV1 on its first frame only.
        let (head, tail) = deflated.split_at(deflated.len() / 2);
        let (header, len) = frame::header_bytes_with(false, Opcode::Binary, head.len(), MASK, true);
        let mut first = header[..len].to_vec();
        let start = first.len();
        first.extend_from_slice(head);
        frame::apply_mask(&mut first[start..], MASK.unwrap());
        wire.extend_from_slice(&first);
        wire.extend_from_slice(&encode::frame(true, Opcode::Continuation, tail, MASK));
        let mut decoder = MessageDecoder::new(Role::Server, text.len()).with_compression();
        assert_eq!(
            decode_all(&mut decoder, wire.clone()).unwrap(),
            vec![
                Message::Text(text.into()),
                Message::Binary(text.as_bytes().to_vec())
            ]
        );
        // One byte under the inflated size: 1009, though the compressed size fits.
        let mut small = MessageDecoder::new(Role::Server, text.len() - 1).with_compression();
        assert!(matches!(
            decode_all(&mut small, wire.clone()),
            Err(ProtocolError::MessageTooBig { .. })
        ));
        // Without the extension, RSV1 is a protocol error.
        let mut plain = MessageDecoder::new(Role::Server, 1 << 20);
        assert_eq!(
            decode_all(&mut plain, wire),
            Err(ProtocolError::ReservedBits)
        );
        // RSV1 on a control frame is refused even with it.
        let (header, len) = frame::header_bytes_with(true, Opcode::Ping, 0, MASK, true);
        let mut ping = header[..len].to_vec();
        assert_eq!(
            MessageDecoder::new(Role::Server, 64)
                .with_compression()
                .decode(&mut ping),
            Err(ProtocolError::MisplacedCompressionBit)
        );
    }

    #[test]
    fn reassembles_fragments_around_control_frames() {
        let mut wire = encode::frame(false, Opcode::Text, b"hel", MASK).to_vec();
        wire.extend_from_slice(&encode::frame(true, Opcode::Ping, b"p", MASK));
        wire.extend_from_slice(&encode::frame(
            true,
            Opcode::Continuation,
            "lo é".as_bytes(),
            MASK,
        ));
        let mut decoder = MessageDecoder::new(Role::Server, 1024);
        let messages = decode_all(&mut decoder, wire).unwrap();
        assert_eq!(
            messages,
            vec![
                Message::Ping(b"p".to_vec()),
                Message::Text("hello é".into())
            ]
        );
    }

    #[test]
    fn utf8_is_checked_on_the_whole_message() {
        // "é" split across two fragments is valid.
        let e = "é".as_bytes();
        let mut wire = encode::frame(false, Opcode::Text, &e[..1], MASK).to_vec();
        wire.extend_from_slice(&encode::frame(true, Opcode::Continuation, &e[1..], MASK));
        let mut decoder = MessageDecoder::new(Role::Server, 1024);
        assert_eq!(
            decode_all(&mut decoder, wire).unwrap(),
            vec![Message::Text("é".into())]
        );

        let wire = encode::frame(true, Opcode::Text, &[0xC3, 0x28], MASK).to_vec();
        let err = decode_all(&mut MessageDecoder::new(Role::Server, 1024), wire).unwrap_err();
        assert_eq!(err.close_code(), 1007);
    }

    #[test]
    fn oversized_message_is_rejected_from_its_header() {
        let mut decoder = MessageDecoder::new(Role::Server, 10);
        let mut header_only = Vec::new();
        frame::encode_header(&mut header_only, true, Opcode::Binary, 11, MASK);
        let err = decoder.decode(&mut header_only).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooBig { size: 11, max: 10 });
        assert_eq!(err.close_code(), 1009);

        // Fragments count toward the same limit.
        let mut decoder = MessageDecoder::new(Role::Server, 10);
        let mut wire = encode::frame(false, Opcode::Binary, &[0; 6], MASK).to_vec();
        wire.extend_from_slice(&encode::frame(true, Opcode::Continuation, &[0; 6], MASK));
        assert!(matches!(
            decode_all(&mut decoder, wire),
            Err(ProtocolError::MessageTooBig { size: 12, .. })
        ));
    }

    #[test]
    fn a_message_of_exactly_the_limit_is_accepted_and_one_byte_more_closes_with_1009() {
        let mut decoder = MessageDecoder::new(Role::Server, 10);
        assert_eq!(decoder.max_message_size(), 10);
        let at_limit = encode::binary_frame(&[7; 10], MASK).to_vec();
        assert_eq!(
            decode_all(&mut decoder, at_limit).unwrap(),
            [Message::Binary(vec![7; 10])]
        );
        let mut over = encode::binary_frame(&[7; 11], MASK).to_vec();
        let error = decoder.decode(&mut over).unwrap_err();
        assert_eq!(error, ProtocolError::MessageTooBig { size: 11, max: 10 });
        assert_eq!(error.close_code(), close::MESSAGE_TOO_BIG);
    }

    #[test]
    fn the_default_limit_is_cloudflares_32_mib_judged_from_the_header() {
        let mut decoder = MessageDecoder::new(Role::Server, crate::DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(decoder.max_message_size(), 32 * 1024 * 1024);
        for (len, accepted) in [(32 << 20, true), ((32 << 20) + 1, false)] {
            let (header, header_len) = frame::header_bytes(true, Opcode::Binary, len, MASK);
            let mut wire = header[..header_len].to_vec();
            match decoder.decode(&mut wire) {
                Ok(step) => {
                    assert!(accepted, "{len} bytes were accepted");
                    assert_eq!(step.needed, Some(header_len + len), "waits for the payload");
                }
                Err(error) => {
                    assert!(!accepted, "{len} bytes were refused: {error}");
                    assert_eq!(error.close_code(), close::MESSAGE_TOO_BIG);
                }
            }
        }
    }

    #[test]
    fn continuation_rules() {
        let wire = encode::frame(true, Opcode::Continuation, b"x", MASK).to_vec();
        let err = decode_all(&mut MessageDecoder::new(Role::Server, 64), wire).unwrap_err();
        assert_eq!(err, ProtocolError::UnexpectedContinuation);

        let mut wire = encode::frame(false, Opcode::Text, b"a", MASK).to_vec();
        wire.extend_from_slice(&encode::frame(true, Opcode::Text, b"b", MASK));
        let err = decode_all(&mut MessageDecoder::new(Role::Server, 64), wire).unwrap_err();
        assert_eq!(err, ProtocolError::ExpectedContinuation);
    }

    #[test]
    fn reports_bytes_needed_for_a_partial_frame() {
        let mut wire = encode::frame(true, Opcode::Binary, &[7; 300], MASK).to_vec();
        let total = wire.len();
        let mut decoder = MessageDecoder::new(Role::Server, 1024);
        let step = decoder.decode(&mut wire[..10]).unwrap();
        assert_eq!((step.consumed, step.needed), (0, Some(total)));
        let step = decoder.decode(&mut wire).unwrap();
        assert_eq!(step.consumed, total);
        assert_eq!(step.message, Some(Message::Binary(vec![7; 300])));
    }

    #[test]
    fn close_without_status() {
        let wire = encode::frame(true, Opcode::Close, &[], MASK).to_vec();
        let messages = decode_all(&mut MessageDecoder::new(Role::Server, 64), wire).unwrap();
        assert_eq!(messages, vec![Message::Close(None)]);
    }

    #[test]
    fn a_step_says_inflated_only_for_the_end_of_a_compressed_message() {
        let text = "the same words again, the same words again, the same words again";
        let deflated = deflate::compress(text.as_bytes()).unwrap();
        let mut decoder = MessageDecoder::new(Role::Server, 1 << 20).with_compression();
        let mut inflated = |wire: Bytes| {
            let mut wire = wire.to_vec();
            let step = decoder.decode(&mut wire).unwrap();
            (step.message.is_some(), step.inflated)
        };
        assert_eq!(inflated(encode::text_frame(text, MASK)), (true, false));
        assert_eq!(
            inflated(encode::compressed_frame(Opcode::Text, &deflated, MASK)),
            (true, true)
        );
        let (head, tail) = deflated.split_at(deflated.len() / 2);
        let (header, len) = frame::header_bytes_with(false, Opcode::Text, head.len(), MASK, true);
        let mut first = header[..len].to_vec();
        let start = first.len();
        first.extend_from_slice(head);
        frame::apply_mask(&mut first[start..], MASK.unwrap());
        assert_eq!(inflated(Bytes::from(first)), (false, false));
        assert_eq!(
            inflated(encode::frame(true, Opcode::Continuation, tail, MASK)),
            (true, true),
            "the continuation ends a compressed message"
        );
    }
}
