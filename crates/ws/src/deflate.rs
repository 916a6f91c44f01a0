//! permessage-deflate (RFC 7692) without context takeover, so that a socket holds no compression
//! state at all: negotiation, and compressing or inflating one whole message at a time with a
//! compressor and an inflater per thread, reset for every message.
//!
//! Both parameters that make this possible are always in the answer: `server_no_context_takeover`
//! (a server may always send it, §7.1.1.1) and `client_no_context_takeover` (a server may always
//! send it, §7.1.1.2; Chromium and Firefox honour it). Offers Dormouse cannot honour are declined
//! one by one: `server_max_window_bits` below 15 (the compressor's window is fixed), unknown or
//! repeated parameters, and the Safari releases that ignore `client_no_context_takeover`.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use http::header;

use crate::ProtocolError;

/// The extension's answer, whatever the accepted offer asked for.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Messages shorter than this go out uncompressed: deflate's framing and the work of a reset
/// outweigh what a few dozen bytes can save.
pub const MIN_COMPRESSED_BYTES: usize = 64;

/// The end of a sync flush: stripped from every compressed message and put back to inflate it
/// (§7.2.1, §7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// deflate's largest window: the only one this compressor uses and the default for peers.
const MAX_WINDOW_BITS: u8 = 15;

/// Whether the client's `Sec-WebSocket-Extensions` holds a permessage-deflate offer this server
/// can accept; the answer is then [`RESPONSE`].
pub fn negotiate(headers: &HeaderMap) -> bool {
    if ignores_client_no_context_takeover(headers) {
        return false;
    }
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(acceptable_offer)
}

/// One offer (`permessage-deflate; param; param=value`) that can be accepted as [`RESPONSE`].
fn acceptable_offer(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
    {
        return false;
    }
    let mut seen: Vec<String> = Vec::new();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return false;
        }
        let fine = match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => true,
            ("server_max_window_bits", Some(bits)) => bits.parse() == Ok(MAX_WINDOW_BITS),
            ("client_max_window_bits", None) => true,
            ("client_max_window_bits", Some(bits)) => {
                bits.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b))
            }
            _ => false,
        };
        if !fine {
            return false;
        }
        seen.push(name);
    }
    true
}

/// Safari 15.0 to 15.3 accept `client_no_context_takeover` and then keep their window anyway,
/// which a stateless inflater cannot follow.
fn ignores_client_no_context_takeover(headers: &HeaderMap) -> bool {
    let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let safari =
        agent.contains("Safari/") && !agent.contains("Chrome/") && !agent.contains("Chromium/");
    safari
        && [
            "Version/15.0",
            "Version/15.1",
            "Version/15.2",
            "Version/15.3",
        ]
        .iter()
        .any(|version| agent.contains(version))
}

/// zlib-rs (flate2's `zlib-rs` backend): of the pure-Rust backends, the one that resets and
/// inflates fastest, which is what a message at a time is made of (measured: a 195-byte chat
/// message compresses in 4.4 µs at level 1 and inflates in 0.6 to 1.5 µs; miniz_oxide takes 8.6
/// and 3.5 µs). Level 1: resetting, not searching, is most of the work at these sizes.
struct Codec {
    compress: Compress,
    inflate: Decompress,
}

thread_local! {
    /// Made on a thread's first compressed message; a socket holds nothing of it.
    static CODEC: RefCell<Option<Codec>> = const { RefCell::new(None) };
}

fn with_codec<T>(work: impl FnOnce(&mut Codec) -> T) -> T {
    CODEC.with_borrow_mut(|codec| {
        let codec = codec.get_or_insert_with(|| Codec {
            compress: Compress::new(Compression::fast(), false),
            inflate: Decompress::new(false),
        });
        work(codec)
    })
}

/// `payload` compressed as one message (sync flush, tail stripped), or `None` when it is too
/// short to be worth it or would not shrink.
pub fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < MIN_COMPRESSED_BYTES {
        return None;
    }
    with_codec(|codec| {
        let deflate = &mut codec.compress;
        deflate.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        loop {
            let consumed = deflate.total_in() as usize;
            deflate
                .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                .ok()?;
            // Done once every byte went in and the flush fit in the spare room.
            if deflate.total_in() as usize == payload.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(256));
        }
        if !out.ends_with(&SYNC_TAIL) {
            return None;
        }
        out.truncate(out.len() - SYNC_TAIL.len());
        (out.len() < payload.len()).then_some(out)
    })
}

/// Inflates one compressed message, refusing to produce more than `max` bytes: a decompression
/// bomb fails with [`ProtocolError::MessageTooBig`] before it is inflated past the limit.
pub fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
    with_codec(|codec| {
        let inflate = &mut codec.inflate;
        inflate.reset(false);
        // The output may not pass `max`: one byte of room more tells that it would.
        let bound = max.saturating_add(1);
        let mut out = Vec::with_capacity(compressed.len().saturating_mul(3).clamp(64, bound));
        for input in [compressed, &SYNC_TAIL[..]] {
            let start = inflate.total_in();
            loop {
                let consumed = (inflate.total_in() - start) as usize;
                let status = inflate
                    .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                    .map_err(|error| ProtocolError::BadCompression(error.to_string()))?;
                if out.len() > max {
                    return Err(ProtocolError::MessageTooBig {
                        size: out.len() as u64,
                        max,
                    });
                }
                let all_in = (inflate.total_in() - start) as usize == input.len();
                let room = out.len() < out.capacity();
                if (all_in && room) || status == Status::StreamEnd {
                    break;
                }
                if !room {
                    let grown = out.capacity().saturating_mul(2).min(bound);
                    out.reserve_exact(grown.saturating_sub(out.len()));
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn offering(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(value),
        );
        headers
    }

    #[test]
    fn browsers_offers_are_accepted() {
        // Chromium, Firefox, Python websockets, Node ws.
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ] {
            assert!(negotiate(&offering(offer)), "{offer}");
        }
    }

    #[test]
    fn offers_that_cannot_be_honoured_are_declined_and_the_next_one_is_tried() {
        for offer in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; unknown_param",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert!(!negotiate(&offering(offer)), "{offer}");
        }
        assert!(negotiate(&offering(
            "permessage-deflate; server_max_window_bits=10, permessage-deflate"
        )));
        assert!(!negotiate(&HeaderMap::new()));
    }

    #[test]
    fn safari_15_0_to_15_3_gets_no_compression() {
        let mut headers = offering("permessage-deflate");
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.2 Safari/605.1.15"),
        );
        assert!(!negotiate(&headers));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.4 Safari/605.1.15"),
        );
        assert!(negotiate(&headers));
    }

    #[test]
    fn a_message_round_trips_and_each_is_independent_of_the_last() {
        let chat = br#"{"type":"message","room":"lobby","from":"alice","text":"hello everyone, hello everyone"}"#;
        let first = compress(chat).expect("verbose JSON shrinks");
        assert!(first.len() < chat.len());
        assert_eq!(inflate(&first, 1 << 20).unwrap(), chat);
        // No context is carried over: the same message compresses the same way again.
        assert_eq!(compress(chat).unwrap(), first);
        assert!(compress(b"short").is_none(), "not worth it");
    }

    #[test]
    fn a_peer_compressor_with_sync_flush_inflates() {
        // What a browser sends: raw deflate, sync flush, tail removed.
        let mut peer = Compress::new(Compression::best(), false);
        let text = "ab".repeat(5_000);
        let mut out = Vec::with_capacity(20_000);
        peer.compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&SYNC_TAIL));
        out.truncate(out.len() - 4);
        assert_eq!(inflate(&out, 10_000).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = compress(&zeros).unwrap();
        assert!(
            bomb.len() < (10 << 20) / 100,
            "10 MiB of zeros is {} bytes compressed",
            bomb.len()
        );
        match inflate(&bomb, 1 << 20) {
            Err(ProtocolError::MessageTooBig { size, max }) => {
                assert_eq!(max, 1 << 20);
                assert!(size <= (1 << 20) + 1, "stopped at the limit, not at {size}");
            }
            other => panic!("expected MessageTooBig, got {other:?}"),
        }
        assert_eq!(inflate(&bomb, 10 << 20).unwrap().len(), 10 << 20);
        assert!(matches!(
            inflate(&[0xff, 0xff, 0xff], 100),
            Err(ProtocolError::BadCompression(_))
        ));
    }

    /// Deterministic bytes drawn from the first `alphabet` letters: the fewer letters, the better
    /// they compress.
    fn letters(len: usize, alphabet: u8, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % u64::from(alphabet)) as u8
            })
            .collect()
    }

    /// What a fresh compressor with Dormouse's settings makes of `payload`, tail stripped.
    fn deflated_len(payload: &[u8]) -> usize {
        let mut compressor = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(payload.len() * 2 + 64);
        compressor
            .compress_vec(payload, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&SYNC_TAIL));
        out.len() - SYNC_TAIL.len()
    }

    #[test]
    fn output_that_outgrows_its_first_buffer_is_finished_and_loses_its_tail() {
        // Sixteen letters compress to a bit over half: more than the first buffer holds.
        let payload = letters(4_000, 16, 7);
        let deflated = compress(&payload).expect("sixteen letters shrink");
        assert!(
            deflated.len() > payload.len() / 2 + 64,
            "{} bytes",
            deflated.len()
        );
        assert_eq!(
            deflated.len(),
            deflated_len(&payload),
            "the tail is stripped"
        );
        assert_eq!(inflate(&deflated, payload.len()).unwrap(), payload);
    }

    #[test]
    fn a_message_that_would_not_shrink_goes_plain() {
        // Find a payload that compresses to exactly its own size.
        let payload = (64..400)
            .flat_map(|len| (1..40).map(move |seed| letters(len, 26, seed)))
            .find(|payload| deflated_len(payload) == payload.len())
            .expect("some payload compresses to its own size");
        assert!(compress(&payload).is_none(), "{} bytes", payload.len());
    }

    #[test]
    fn only_safari_15_0_to_15_3_is_refused() {
        for (agent, refused) in [
            ("AppleWebKit/605.1.15 Version/15.1 Safari/605.1.15", true),
            ("AppleWebKit/605.1.15 Version/15.1 Mobile/15E148", false),
            ("Chrome/120.0 Version/15.1 Safari/537.36", false),
            ("Chromium/120.0 Version/15.1 Safari/537.36", false),
        ] {
            let mut headers = offering("permessage-deflate");
            headers.insert(header::USER_AGENT, HeaderValue::from_static(agent));
            assert_eq!(!negotiate(&headers), refused, "{agent}");
        }
    }
}
