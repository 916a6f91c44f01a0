//! The HTTP/1.1 upgrade handshake (RFC 6455 §4).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, Method, StatusCode, Version, header};
use sha1::{Digest, Sha1};

use crate::HandshakeError;

/// The GUID RFC 6455 appends to the client key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether `headers` ask for a WebSocket upgrade at all (`Upgrade: websocket`, any case).
///
/// Requests that do not ask are ordinary HTTP and go to the application untouched, so that it can
/// answer 426 as Workers code does.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    header_has_token(headers, &header::UPGRADE, "websocket")
}

/// Validates a request that asked for an upgrade and returns its `Sec-WebSocket-Key`.
pub fn validate_request(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<String, HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::MethodNotGet(method.to_string()));
    }
    if version != Version::HTTP_11 {
        return Err(HandshakeError::WrongHttpVersion);
    }
    if !header_has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .ok_or(HandshakeError::MissingVersion)?;
    if version.as_bytes().trim_ascii() != b"13" {
        return Err(HandshakeError::UnsupportedVersion(
            String::from_utf8_lossy(version.as_bytes()).into_owned(),
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::MissingKey)?;
    let key = key.to_str().map(str::trim).unwrap_or_default();
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(key.to_owned()),
        _ => Err(HandshakeError::InvalidKey(
            String::from_utf8_lossy(key.as_bytes()).into_owned(),
        )),
    }
}

/// The `Sec-WebSocket-Accept` value for a client key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    BASE64.encode(sha.finalize())
}

/// A fresh client key from 16 caller-supplied random bytes.
pub fn client_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// The raw HTTP/1.1 request a client sends to open a WebSocket at `path` on `host`.
pub fn client_request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Checks a server's answer to a client handshake sent with `key`.
pub fn check_response(
    status: StatusCode,
    headers: &HeaderMap,
    key: &str,
) -> Result<(), HandshakeError> {
    if status != StatusCode::SWITCHING_PROTOCOLS {
        return Err(HandshakeError::Rejected(format!("status {status}")));
    }
    let expected = accept_key(key);
    match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
        Some(value) if value.as_bytes() == expected.as_bytes() => Ok(()),
        _ => Err(HandshakeError::Rejected(
            "wrong or missing Sec-WebSocket-Accept".into(),
        )),
    }
}

/// The subprotocols a client offers (`Sec-WebSocket-Protocol`, in order, over every value).
pub fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The subprotocol a server's answer chose (its `Sec-WebSocket-Protocol`), checked against what
/// the client `offered`: one of them, exactly (subprotocol names are case-sensitive), or none.
pub fn chosen_subprotocol(
    offered: &[String],
    response: &HeaderMap,
) -> Result<Option<String>, HandshakeError> {
    let mut values = response.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let chosen = text.trim();
    if values.next().is_some() || chosen.contains(',') {
        let all: Vec<String> = response
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        return Err(HandshakeError::SeveralSubprotocols(all.join(", ")));
    }
    if offered.iter().any(|name| name == chosen) {
        Ok(Some(chosen.to_owned()))
    } else {
        Err(HandshakeError::SubprotocolNotOffered {
            chosen: chosen.to_owned(),
            offered: if offered.is_empty() {
                "none".to_owned()
            } else {
                offered.join(", ")
            },
        })
    }
}

/// Whether any value of `name` lists `token` (comma-separated, case-insensitive).
fn header_has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn upgrade_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers
    }

    #[test]
    fn offered_subprotocols_are_read_in_order_from_every_value() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("graphql-transport-ws, graphql-ws"),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(" mqtt ,"),
        );
        assert_eq!(
            offered_subprotocols(&headers),
            ["graphql-transport-ws", "graphql-ws", "mqtt"]
        );
        assert!(offered_subprotocols(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn a_server_may_choose_one_offered_subprotocol_or_none() {
        let offered = vec!["v12.stomp".to_owned(), "mqtt".to_owned()];
        let answer = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(value),
            );
            chosen_subprotocol(&offered, &headers)
        };
        assert_eq!(chosen_subprotocol(&offered, &HeaderMap::new()), Ok(None));
        assert_eq!(answer("mqtt"), Ok(Some("mqtt".to_owned())));
        let refused = answer("MQTT").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the server chose WebSocket subprotocol \"MQTT\", which the client did not offer (offered: v12.stomp, mqtt)"
        );
        assert_eq!(refused.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            answer("mqtt, v12.stomp"),
            Err(HandshakeError::SeveralSubprotocols(
                "mqtt, v12.stomp".into()
            ))
        );
        assert!(matches!(
            chosen_subprotocol(&[], &{
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static("x"),
                );
                headers
            }),
            Err(HandshakeError::SubprotocolNotOffered { .. })
        ));
    }

    #[test]
    fn rfc_sample_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accepts_a_valid_request() {
        let headers = upgrade_headers();
        assert!(is_upgrade_request(&headers));
        assert_eq!(
            validate_request(&Method::GET, Version::HTTP_11, &headers).unwrap(),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    #[test]
    fn a_request_without_upgrade_is_plain_http() {
        let mut headers = upgrade_headers();
        headers.remove(header::UPGRADE);
        assert!(!is_upgrade_request(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!is_upgrade_request(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(
            is_upgrade_request(&headers),
            "the token is case-insensitive"
        );
    }

    #[test]
    fn a_key_must_decode_to_exactly_16_bytes() {
        for (random_bytes, valid) in [(15, false), (16, true), (17, false)] {
            let key = BASE64.encode(vec![0x5A; random_bytes]);
            let mut headers = upgrade_headers();
            headers.insert(header::SEC_WEBSOCKET_KEY, key.parse().unwrap());
            let result = validate_request(&Method::GET, Version::HTTP_11, &headers);
            assert_eq!(result.is_ok(), valid, "{random_bytes} bytes: {result:?}");
        }
    }

    #[test]
    fn a_client_handshake_is_one_the_server_accepts() {
        let key = client_key([0x11; 16]);
        assert_eq!(key, "EREREREREREREREREREREQ==");
        let request = client_request("example.com:80", "/room/a?x=1", &key);
        assert!(
            request.starts_with("GET /room/a?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.ends_with("\r\n\r\n"));
        let mut headers = HeaderMap::new();
        for line in request.lines().skip(1).filter(|line| !line.is_empty()) {
            let (name, value) = line.split_once(": ").expect("a header line");
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        assert_eq!(headers[header::HOST], "example.com:80");
        assert!(is_upgrade_request(&headers));
        assert_eq!(
            validate_request(&Method::GET, Version::HTTP_11, &headers).as_deref(),
            Ok(key.as_str())
        );
    }

    #[test]
    fn a_server_answer_needs_101_and_the_right_accept_key() {
        let key = client_key([0x22; 16]);
        let mut answer = HeaderMap::new();
        answer.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            accept_key(&key).parse().unwrap(),
        );
        assert_eq!(
            check_response(StatusCode::SWITCHING_PROTOCOLS, &answer, &key),
            Ok(())
        );
        assert!(check_response(StatusCode::OK, &answer, &key).is_err());
        let other = client_key([0x33; 16]);
        assert!(check_response(StatusCode::SWITCHING_PROTOCOLS, &answer, &other).is_err());
        assert!(check_response(StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new(), &key).is_err());
    }

    #[test]
    fn names_what_is_wrong() {
        let headers = upgrade_headers();
        assert_eq!(
            validate_request(&Method::POST, Version::HTTP_11, &headers),
            Err(HandshakeError::MethodNotGet("POST".into()))
        );
        let mut no_key = upgrade_headers();
        no_key.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(
            validate_request(&Method::GET, Version::HTTP_11, &no_key),
            Err(HandshakeError::MissingKey)
        );
        let mut bad_key = upgrade_headers();
        bad_key.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("short"));
        assert!(matches!(
            validate_request(&Method::GET, Version::HTTP_11, &bad_key),
            Err(HandshakeError::InvalidKey(_))
        ));
        let mut old = upgrade_headers();
        old.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(matches!(
            validate_request(&Method::GET, Version::HTTP_11, &old),
            Err(HandshakeError::UnsupportedVersion(_))
        ));
        let mut no_conn = upgrade_headers();
        no_conn.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(
            validate_request(&Method::GET, Version::HTTP_11, &no_conn),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
    }
}
