//! Helpers for reading requests.

use crate::Request;

/// Conveniences on [`Request`], in the spirit of JavaScript's `new URL(request.url)`.
pub trait RequestExt {
    /// The first value of query parameter `name`, decoded like `URLSearchParams.get` (`+` is a
    /// space, percent-escapes are decoded).
    fn query_param(&self, name: &str) -> Option<String>;
}

impl RequestExt for Request {
    fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri().query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
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
}
