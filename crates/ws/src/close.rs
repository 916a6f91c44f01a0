//! Close codes (RFC 6455 §7.4) and close frame payloads (§5.5.1).

use crate::ProtocolError;

/// 1000: the purpose of the connection was fulfilled.
pub const NORMAL: u16 = 1000;
/// 1001: the server is going away (shutdown) or the client navigated away.
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1005: reported locally when a close frame carried no code; never sent.
pub const NO_STATUS: u16 = 1005;
/// 1006: reported locally when the connection ended without a close frame; never sent.
pub const ABNORMAL: u16 = 1006;
/// 1007: a text message was not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: the peer broke a policy (for example, it stopped reading).
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: a message was larger than allowed.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server hit an unexpected condition (a Durable Object was reset).
pub const INTERNAL_ERROR: u16 = 1011;
/// 1012: the server is restarting.
pub const SERVICE_RESTART: u16 = 1012;
/// 1013: try again later (overload).
pub const TRY_AGAIN_LATER: u16 = 1013;

/// Longest close reason that fits a control frame: 125 bytes minus the 2-byte code.
pub const MAX_REASON_BYTES: usize = 123;

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: u16,
    /// The UTF-8 reason, possibly empty.
    pub reason: String,
}

/// Whether a peer may put `code` in a close frame it sends (RFC 6455 §7.4.1 and the IANA
/// registry): the defined codes except those reserved for local use, plus 3000–4999.
pub fn is_valid_received(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether an application may close with `code`: Cloudflare's rule, which accepts 1000–4999
/// except the four codes RFC 6455 forbids on the wire (1004, 1005, 1006, 1015).
pub fn is_valid_application_code(code: u16) -> bool {
    (1000..5000).contains(&code) && !matches!(code, 1004 | 1005 | 1006 | 1015)
}

/// Parses a close frame's payload. An empty payload means "no status" (reported as 1005).
pub fn parse_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_received(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = simdutf8::basic::from_utf8(reason)
                .map_err(|_| ProtocolError::InvalidUtf8("close reason"))?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

/// Cuts `reason` to at most [`MAX_REASON_BYTES`] on a character boundary, for reasons the runtime
/// builds itself (error texts); reasons from applications are validated instead.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payloads() {
        assert_eq!(parse_payload(&[]), Ok(None));
        assert_eq!(parse_payload(&[3]), Err(ProtocolError::CloseTooShort));
        assert_eq!(
            parse_payload(&[0x03, 0xE8, b'o', b'k']),
            Ok(Some(CloseFrame {
                code: 1000,
                reason: "ok".into()
            }))
        );
        assert_eq!(
            parse_payload(&[0x03, 0xED]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_payload(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidUtf8("close reason"))
        );
    }

    #[test]
    fn application_codes_follow_cloudflare() {
        assert!(is_valid_application_code(1000));
        assert!(is_valid_application_code(1011));
        assert!(is_valid_application_code(4999));
        for code in [999, 1004, 1005, 1006, 1015, 5000] {
            assert!(!is_valid_application_code(code), "{code}");
        }
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
