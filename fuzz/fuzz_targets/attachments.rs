//! Attachment decoding on arbitrary stored bytes (a corrupted or foreign attachment): an error,
//! never a panic, for a generic value and for a typed session.

#![no_main]

use dormouse_sdk::websocket::decode_attachment;
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Session {
    user_id: String,
    username: Option<String>,
    rooms: Vec<u32>,
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_attachment::<serde_json::Value>(data);
    let _ = decode_attachment::<Session>(data);
    let _ = decode_attachment::<Vec<(String, i64)>>(data);
});
