//! The frame decoder, on arbitrary bytes, in both roles: it must never panic, never consume more
//! than it was given, and never return a message larger than its limit.

#![no_main]

use dormouse_ws::{Message, MessageDecoder, Role};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    for role in [Role::Server, Role::Client] {
        let mut decoder = MessageDecoder::new(role, LIMIT);
        let mut bytes = data.to_vec();
        let mut at = 0;
        while at < bytes.len() {
            match decoder.decode(&mut bytes[at..]) {
                Ok(step) if step.consumed == 0 => break,
                Ok(step) => {
                    assert!(step.consumed <= bytes.len() - at);
                    at += step.consumed;
                    match step.message {
                        Some(Message::Text(text)) => assert!(text.len() <= LIMIT),
                        Some(Message::Binary(data)) => assert!(data.len() <= LIMIT),
                        Some(Message::Ping(p) | Message::Pong(p)) => assert!(p.len() <= 125),
                        _ => {}
                    }
                }
                Err(error) => {
                    assert!(matches!(error.close_code(), 1002 | 1007 | 1009));
                    break;
                }
            }
        }
    }
});
