//! Helpers for reading requests.

/// Conveniences on requests (an object's [`Request`](crate::Request), or the Worker's), in the
/// spirit of JavaScript's `new URL(request.url)` and `request.headers.get("Upgrade")`.
pub trait RequestExt {
    /// The first value of query parameter `name`, decoded like `URLSearchParams.get` (`+` is a
    /// space, percent-escapes are decoded).
    fn query_param(&self, name: &str) -> Option<String>;

    /// Whether the request asks for a WebSocket: its `Upgrade` header is `websocket`, in any
    /// case (RFC 6455). The rest of the handshake is checked when the upgrade is answered.
    fn is_websocket_upgrade(&self) -> bool;
}

impl<B> RequestExt for http::Request<B> {
    fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri().query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    fn is_websocket_upgrade(&self) -> bool {
        self.headers()
            .get(http::header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    #[test]
    fn decodes_like_url_search_params() {
        let request = http::Request::get("/room/a?username=Ann+Lee&userId=%C3%A9&userId=second")
            .body(Body::empty())
            .unwrap();
        assert_eq!(request.query_param("username").as_deref(), Some("Ann Lee"));
        assert_eq!(request.query_param("userId").as_deref(), Some("é"));
        assert_eq!(request.query_param("missing"), None);
    }

    #[test]
    fn recognises_websocket_upgrades_in_any_case() {
        let upgrade = |value: Option<&str>| {
            let mut request = http::Request::get("/").body(Body::empty()).unwrap();
            if let Some(value) = value {
                request
                    .headers_mut()
                    .insert("upgrade", value.parse().unwrap());
            }
            request.is_websocket_upgrade()
        };
        assert!(upgrade(Some("websocket")));
        assert!(upgrade(Some("WebSocket")));
        assert!(!upgrade(Some("h2c")));
        assert!(!upgrade(None));
    }
}
