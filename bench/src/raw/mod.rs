//! The raw baseline: seed 002's echo (`/websocket`) and seed 000's chat room
//! (`/room/{id}?userId=..&username=..`) answered straight from the socket tasks, on the same
//! codec as Dormouse and the same tokio, with no objects, no hibernation and no storage. A task
//! per connection (two in a room: reader and writer) with its own buffers, as such servers are
//! usually written.

mod echo;
mod handshake;
mod room;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use dormouse_ws::frame::{self, Opcode};
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted, as Dormouse's default.
const MAX_MESSAGE: usize = 32 << 20;

/// Serves connections from `listener` forever.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let shared = Arc::new(Shared::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(error) = connection(stream, shared).await {
                // Clients of a benchmark come and go; nothing to do about one that failed.
                let _ = error;
            }
        });
    }
}

#[derive(Default)]
struct Shared {
    /// Open echo connections (seed 002 reports the count in every answer).
    echo_connections: AtomicUsize,
    rooms: room::Rooms,
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some((path, rest)) = handshake::accept(&mut stream).await? else {
        return Ok(());
    };
    if path == "/websocket" {
        shared.echo_connections.fetch_add(1, Ordering::Relaxed);
        let result = echo::serve(stream, rest, &shared.echo_connections).await;
        shared.echo_connections.fetch_sub(1, Ordering::Relaxed);
        result
    } else {
        room::serve(stream, rest, &path, &shared.rooms).await
    }
}

/// Appends an unmasked (server) frame to `out`.
fn push_frame(out: &mut BytesMut, opcode: Opcode, payload: &[u8]) {
    let mut header = Vec::with_capacity(frame::MAX_HEADER_LEN);
    frame::encode_header(&mut header, true, opcode, payload.len(), None);
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}
