//! Who may use the admin endpoint: anyone on the machine when it listens on loopback and has no
//! token; otherwise only requests carrying the token. Actions (POSTs) are refused to other sites'
//! pages, and a tokenless endpoint answers only to loopback host names, so that a hostile page
//! reaching it through a rebound DNS name is turned away.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use tokio::net::TcpListener;

use crate::error::ServerError;

/// The cookie the inspector page sets once it was given the token.
pub(crate) const TOKEN_COOKIE: &str = "dormouse_admin_token";

/// Asked for the token by a browser without it.
const LOGIN_PAGE: &str = include_str!("page/login.html");

/// How the admin endpoint is protected.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    token: Option<Arc<str>>,
}

impl Access {
    /// The protection for an endpoint on `listener`: a token is required off loopback.
    pub(crate) fn for_listener(
        listener: &TcpListener,
        token: Option<&str>,
    ) -> Result<Access, ServerError> {
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: ([0, 0, 0, 0], 0).into(),
            source,
        })?;
        Access::for_address(addr, token)
    }

    fn for_address(addr: SocketAddr, token: Option<&str>) -> Result<Access, ServerError> {
        let token = token.filter(|token| !token.is_empty());
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(ServerError::AdminWithoutToken { addr });
        }
        Ok(Access {
            token: token.map(Arc::from),
        })
    }

    /// Whether `headers` carry the token (always, when there is none).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == TOKEN_COOKIE)
            .map(|(_, value)| value);
        let cookie = cookie.map(percent_decoded);
        [bearer.map(|b| b.as_bytes().to_vec()), cookie]
            .into_iter()
            .flatten()
            .any(|offered| same_secret(&offered, token.as_bytes()))
    }
}

/// A cookie value as the page wrote it (`encodeURIComponent`), decoded.
fn percent_decoded(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// Compares in time that depends on the lengths only, not on where the first difference is.
pub(crate) fn same_secret(offered: &[u8], token: &[u8]) -> bool {
    offered.len() == token.len()
        && offered
            .iter()
            .zip(token)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// The admin endpoint's gatekeeper, run before every route.
pub(crate) async fn check(State(access): State<Access>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if access.token.is_none() && !loopback_host(headers) {
        return (
            StatusCode::FORBIDDEN,
            "the admin endpoint answers to loopback host names only (localhost, 127.0.0.1, [::1]) unless it has a token\n",
        )
            .into_response();
    }
    if !access.admits(headers) {
        let wants_page = request.method() == Method::GET
            && headers
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
        if wants_page {
            return (StatusCode::UNAUTHORIZED, Html(LOGIN_PAGE)).into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "the admin endpoint needs its token: send `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(why) = cross_site(headers)
    {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    next.run(request).await
}

/// Why a request that acts is refused as coming from another site's page, if it is. A request
/// without `Origin` or `Sec-Fetch-Site` (curl, scripts on the machine) is not a page's.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return Some("admin actions may not be triggered by another site's page\n");
    }
    if let Some(origin) = text(header::ORIGIN) {
        let origin_host = origin.split_once("://").map(|(_, host)| host);
        if origin_host.is_none() || origin_host != text(header::HOST) {
            return Some(
                "admin actions must come from the admin page itself (Origin differs from Host)\n",
            );
        }
    }
    None
}

/// Whether the request names the endpoint by a loopback host (or names none).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn off_loopback_a_token_is_required() {
        let open: SocketAddr = "0.0.0.0:9787".parse().unwrap();
        let error = Access::for_address(open, None).unwrap_err().to_string();
        assert!(error.contains("--admin-token"), "{error}");
        assert!(
            Access::for_address(open, Some("")).is_err(),
            "an empty token is none"
        );
        assert!(Access::for_address(open, Some("secret")).is_ok());
        assert!(Access::for_address("127.0.0.2:1".parse().unwrap(), None).is_ok());
        assert!(Access::for_address("[::1]:1".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn the_token_comes_as_a_bearer_or_a_cookie() {
        let access = Access::for_address("0.0.0.0:1".parse().unwrap(), Some("s3cret")).unwrap();
        assert!(access.admits(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(access.admits(&headers(&[("cookie", "a=b; dormouse_admin_token=s3cret")])));
        assert!(!access.admits(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!access.admits(&headers(&[("authorization", "s3cret")])));
        assert!(!access.admits(&headers(&[("cookie", "other=s3cret")])));
        assert!(!access.admits(&HeaderMap::new()));
        // What the page's `encodeURIComponent` makes of a base64 token.
        let base64 = Access::for_address("0.0.0.0:1".parse().unwrap(), Some("a+b/c==")).unwrap();
        assert!(base64.admits(&headers(&[(
            "cookie",
            "dormouse_admin_token=a%2Bb%2Fc%3D%3D"
        )])));
        assert!(!base64.admits(&headers(&[("cookie", "dormouse_admin_token=a%2Bb%2Fc%3D")])));
    }

    #[test]
    fn actions_from_other_sites_are_refused_and_scripts_pass() {
        assert_eq!(
            cross_site(&HeaderMap::new()),
            None,
            "curl sends neither header"
        );
        let same = headers(&[
            ("origin", "http://127.0.0.1:9787"),
            ("host", "127.0.0.1:9787"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(cross_site(&same), None);
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9787"),
        ]);
        assert!(cross_site(&other).is_some());
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "x")])).is_some());
    }

    #[test]
    fn a_tokenless_endpoint_answers_to_loopback_names_only() {
        for host in [
            "localhost:9787",
            "127.0.0.1:9787",
            "127.3.4.5",
            "[::1]:9787",
            "LOCALHOST",
        ] {
            assert!(loopback_host(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "evil.example:9787",
            "10.0.0.1:9787",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(&headers(&[("host", host)])), "{host}");
        }
    }
}
