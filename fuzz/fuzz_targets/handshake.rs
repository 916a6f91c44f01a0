//! Upgrade-request validation on arbitrary headers: never panics, and what it accepts is a
//! well-formed key whose accept value can be computed.

#![no_main]

use dormouse_ws::handshake;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let method = match first % 3 {
        0 => Method::GET,
        1 => Method::POST,
        _ => Method::from_bytes(rest.get(..3).unwrap_or(b"PUT")).unwrap_or(Method::PUT),
    };
    let version = if first & 0x80 == 0 { Version::HTTP_11 } else { Version::HTTP_10 };
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..])) else {
            continue;
        };
        headers.append(name, value);
    }
    let _ = handshake::is_upgrade_request(&headers);
    if let Ok(key) = handshake::validate_request(&method, version, &headers) {
        assert_eq!(method, Method::GET);
        assert_eq!(handshake::accept_key(&key).len(), 28);
    }
});
