//! The signals that stop a server, and the close code each tells WebSocket clients.

/// Resolves on SIGINT or SIGTERM (the server stops: sockets close with 1001, "going away") or
/// SIGHUP (the server restarts: sockets close with 1012, "service restart", telling clients to
/// reconnect). Returns the close code.
pub async fn shutdown_signal() -> std::io::Result<u16> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(tokio::select! {
        _ = terminate.recv() => dormouse_ws::close::GOING_AWAY,
        _ = interrupt.recv() => dormouse_ws::close::GOING_AWAY,
        _ = hangup.recv() => dormouse_ws::close::SERVICE_RESTART,
    })
}
