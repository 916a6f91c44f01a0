//! The inspector's live feed: Server-Sent Events carrying the namespaces' counts once a second,
//! so that the page updates without reloading. Ends when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use dormouse_runtime::Runtime;
use futures_util::Stream;
use tokio_util::sync::CancellationToken;

use super::api::summary;

/// How often the feed sends the counts.
const TICK: Duration = Duration::from_secs(1);

pub(crate) async fn feed(
    runtime: Runtime,
    stop: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(
        (runtime, stop, tokio::time::interval(TICK)),
        |(runtime, stop, mut ticks)| async move {
            tokio::select! {
                () = stop.cancelled() => None,
                _ = ticks.tick() => {
                    let event = Event::default().event("summary").data(summary(&runtime).to_string());
                    Some((Ok(event), (runtime, stop, ticks)))
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
