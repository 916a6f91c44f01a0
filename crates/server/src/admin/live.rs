//! The inspector's live feeds, as Server-Sent Events: the namespaces' counts once a second, so
//! that the page updates without reloading, and one object's live log as it happens. Both end
//! when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use dormouse_runtime::{EventWatch, LoggedEvent, Runtime, Watched};
use futures_util::Stream;
use serde_json::json;
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

/// The live log of one object: a `log` event per entry, and a `skipped` event with a count when
/// the page fell so far behind that entries were dropped.
pub(crate) fn object_log(
    watch: EventWatch,
    stop: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((watch, stop), |(mut watch, stop)| async move {
        let event = tokio::select! {
            () = stop.cancelled() => return None,
            watched = watch.next() => match watched {
                Watched::Event(entry) => Event::default().event("log").data(entry_json(&entry).to_string()),
                Watched::Skipped(count) => Event::default().event("skipped").data(count.to_string()),
            },
        };
        Some((Ok(event), (watch, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn entry_json(entry: &LoggedEvent) -> serde_json::Value {
    json!({
        "at_ms": entry.at_ms,
        "kind": entry.kind.as_str(),
        "detail": entry.detail,
        "took_us": entry.took.map(|took| took.as_micros() as u64),
    })
}
