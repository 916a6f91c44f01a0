//! The inspector page: one self-contained HTML file (its CSS and script inline), compiled into
//! the binary, so it works offline and needs no build step.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");

pub(crate) async fn index() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Nothing but the page's own script and its own address: a value that slipped
            // through as markup still could not load or send anything.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        Html(INDEX),
    )
        .into_response()
}
