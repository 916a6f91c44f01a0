//! A forwarded WebSocket joined to its client: the client's connection to this node and this
//! node's connection to the object's owner, frame by frame.
//!
//! The owner's side carries, besides the socket's frames, relay frames about the socket
//! (`dormouse_ws::relay`): its tags and attachment, kept here, and a notice that its object
//! moved. They are taken out of the stream: the client never sees one. When the owner goes away
//! (its node died, or lost the object, or drains), the socket is adopted by the object's next
//! owner with the state last reported, and the client's connection stays open: the client keeps
//! talking, to the new owner. What it sent meanwhile waits in its connection; frames the old
//! owner was given but never answered are lost with it. When that cannot be done (no state was
//! reported yet, or the connection stopped in the middle of a frame), the client gets a close
//! frame it can act on, 1012: reconnect.

use std::time::Duration;

use dormouse_runtime::AdoptedSocket;
use dormouse_runtime::placement::{Duplex, ForwardedUpgrade, Readopt};
use dormouse_ws::frame::parse_header_with;
use dormouse_ws::relay::{self, Relay};
use dormouse_ws::{Opcode, Role, close};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::per_address::AddressLease;

/// How long one side may take to finish after the other ended (a close handshake).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Bytes read from either side at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The longest client frame kept while it passes, so that it can be sent again, whole, to the
/// object's next owner if the owner goes away in its middle.
const MAX_KEPT_FRAME: usize = 64 * 1024;

/// The reason the client reads when the owner went away and the socket could not move.
const OWNER_GONE: &str = "the Durable Object's node went away; reconnect";

/// Joins the client's connection, once upgraded, to the owner's, until both ended.
pub(crate) fn join(
    client: OnUpgrade,
    owner: ForwardedUpgrade,
    protocol: Option<String>,
    lease: Option<AddressLease>,
) {
    tokio::spawn(async move {
        // The client's place in its address's count, held while the connection is open.
        let _lease = lease;
        let Some(connection) = owner.take() else {
            tracing::error!("a forwarded upgrade was joined twice");
            return;
        };
        let connection = match connection.await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::debug!(%error, "the owner's side of a forwarded WebSocket did not open");
                return;
            }
        };
        let client = match client.await {
            Ok(client) => TokioIo::new(client),
            Err(error) => {
                tracing::debug!(%error, "client went away before the upgrade completed");
                return;
            }
        };
        let readopt = owner
            .readopt()
            .map(|readopt| Readoption { readopt, protocol });
        splice(client, connection, readopt).await;
    });
}

/// How to move the socket, and what it keeps across moves.
struct Readoption {
    readopt: Readopt,
    protocol: Option<String>,
}

/// How one stretch with one owner ended.
enum Ended {
    /// The client's connection ended: so does the owner's.
    Client,
    /// The owner closed the socket (it sent a close frame).
    Closed,
    /// The owner went away without closing the socket, or said its object moved.
    OwnerGone,
}

/// Copies both ways, moving the socket to the object's next owner when its owner goes away.
async fn splice(
    client: impl AsyncRead + AsyncWrite,
    owner: Box<dyn Duplex>,
    readoption: Option<Readoption>,
) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let mut from_client = Frames::new(Role::Server);
    let mut state: Option<(Vec<String>, Option<Vec<u8>>)> = None;
    let mut owner = owner;
    loop {
        let (mut owner_read, mut owner_write) = tokio::io::split(owner);
        let mut from_owner = Frames::new(Role::Client);
        let ended = stretch(
            (&mut client_read, &mut client_write),
            (&mut owner_read, &mut owner_write),
            &mut from_client,
            &mut from_owner,
            &mut state,
        )
        .await;
        match ended {
            Ended::Client => return,
            Ended::Closed => {
                let _ = client_write.shutdown().await;
                let _ = tokio::time::timeout(CLOSE_WAIT, drain(&mut client_read)).await;
                return;
            }
            Ended::OwnerGone => {}
        }
        let next = match (&readoption, &state) {
            (Some(readoption), Some((tags, attachment)))
                if from_owner.at_boundary() && from_client.resumable() =>
            {
                let socket = AdoptedSocket {
                    tags: tags.clone(),
                    attachment: attachment.clone(),
                    protocol: readoption.protocol.clone(),
                };
                match (readoption.readopt)(socket).await {
                    Ok(next) => Some(next),
                    Err(error) => {
                        tracing::debug!(%error, "the object's next owner did not adopt the socket");
                        None
                    }
                }
            }
            _ => None,
        };
        let Some(mut next) = next else {
            if from_owner.at_boundary() {
                let _ = client_write.write_all(&owner_gone_frame()).await;
            }
            let _ = client_write.shutdown().await;
            let _ = tokio::time::timeout(CLOSE_WAIT, drain(&mut client_read)).await;
            return;
        };
        tracing::debug!("a relayed socket moved to its object's next owner");
        // The frame the client was in the middle of goes again, whole, to the new owner.
        if next.write_all(from_client.kept()).await.is_err() {
            let _ = client_write.write_all(&owner_gone_frame()).await;
            return;
        }
        owner = next;
    }
}

/// The two halves of the connection to the owner.
type OwnerHalves<'a> = (
    &'a mut ReadHalf<Box<dyn Duplex>>,
    &'a mut WriteHalf<Box<dyn Duplex>>,
);

/// Copies both ways with one owner until one side ends.
async fn stretch<C: AsyncRead + AsyncWrite>(
    (client_read, client_write): (&mut ReadHalf<C>, &mut WriteHalf<C>),
    (owner_read, owner_write): OwnerHalves<'_>,
    from_client: &mut Frames,
    from_owner: &mut Frames,
    state: &mut Option<(Vec<String>, Option<Vec<u8>>)>,
) -> Ended {
    let mut client_buffer = vec![0u8; READ_CHUNK];
    let mut owner_buffer = vec![0u8; READ_CHUNK];
    // What of the owner's bytes goes on to the client, and the relay messages among them.
    let (mut forward, mut messages) = (Vec::new(), Vec::new());
    let mut owner_open_for_writes = true;
    loop {
        tokio::select! {
            read = client_read.read(&mut client_buffer), if owner_open_for_writes => {
                let read = match read {
                    Ok(0) | Err(_) => {
                        let _ = owner_write.shutdown().await;
                        return Ended::Client;
                    }
                    Ok(read) => read,
                };
                from_client.follow(&client_buffer[..read]);
                if owner_write.write_all(&client_buffer[..read]).await.is_err() {
                    // The owner is gone; its reading side says so next.
                    owner_open_for_writes = false;
                }
            }
            read = owner_read.read(&mut owner_buffer) => {
                let read = match read {
                    Ok(0) | Err(_) if from_owner.closed => return Ended::Closed,
                    Ok(0) | Err(_) => return Ended::OwnerGone,
                    Ok(read) => read,
                };
                forward.clear();
                from_owner.feed(&owner_buffer[..read], &mut forward, &mut messages);
                if client_write.write_all(&forward).await.is_err() {
                    return Ended::Client;
                }
                for message in messages.drain(..) {
                    match message {
                        Relay::State { tags, attachment } => *state = Some((tags, attachment)),
                        Relay::Moved => return Ended::OwnerGone,
                    }
                }
            }
        }
    }
}

/// Reads until the side ends.
async fn drain(reader: &mut (impl AsyncRead + Unpin)) {
    let mut buffer = vec![0u8; READ_CHUNK];
    while matches!(reader.read(&mut buffer).await, Ok(read) if read > 0) {}
}

/// The close frame (1012) a client gets when the owner went away and the socket could not move.
fn owner_gone_frame() -> bytes::Bytes {
    let close = close::CloseFrame {
        code: close::SERVICE_RESTART,
        reason: OWNER_GONE.into(),
    };
    dormouse_ws::encode::close_frame(Some(&close), None)
}

/// One direction's stream, frame by frame: where frames end, relay frames taken out (from the
/// owner), and the current frame kept (from the client) while it is short.
#[derive(Debug)]
struct Frames {
    /// Who reads the frames: the server (the client's frames) or the client (the owner's).
    reader: Role,
    /// The start of a header not yet complete.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The current frame is a relay frame: its payload so far.
    relay: Option<Vec<u8>>,
    /// The current frame's bytes so far, while it is short enough to keep (client frames).
    kept: Vec<u8>,
    /// The current frame is too long to keep.
    too_long: bool,
    /// A close frame passed.
    closed: bool,
    /// The stream stopped making sense as frames.
    lost: bool,
}

impl Frames {
    fn new(reader: Role) -> Frames {
        Frames {
            reader,
            header: Vec::new(),
            payload_left: 0,
            relay: None,
            kept: Vec::new(),
            too_long: false,
            closed: false,
            lost: false,
        }
    }

    /// Follows `bytes` without passing anything on (the client's side, copied as it is).
    fn follow(&mut self, bytes: &[u8]) {
        self.walk(bytes, None, &mut Vec::new());
    }

    /// Follows `bytes`, appending to `forward` those to pass on (all but relay frames) and to
    /// `messages` the relay messages that ended in them.
    fn feed(&mut self, bytes: &[u8], forward: &mut Vec<u8>, messages: &mut Vec<Relay>) {
        self.walk(bytes, Some(forward), messages);
    }

    fn walk(
        &mut self,
        mut bytes: &[u8],
        mut forward: Option<&mut Vec<u8>>,
        messages: &mut Vec<Relay>,
    ) {
        let pass = |forward: &mut Option<&mut Vec<u8>>, part: &[u8]| {
            if let Some(out) = forward {
                out.extend_from_slice(part);
            }
        };
        while !bytes.is_empty() {
            if self.lost {
                pass(&mut forward, bytes);
                break;
            }
            if self.payload_left > 0 {
                let taken = self.payload_left.min(bytes.len() as u64) as usize;
                let (payload, rest) = bytes.split_at(taken);
                self.payload_left -= taken as u64;
                match &mut self.relay {
                    Some(relayed) => relayed.extend_from_slice(payload),
                    None => {
                        pass(&mut forward, payload);
                        self.keep(payload);
                    }
                }
                bytes = rest;
                if self.payload_left == 0 {
                    self.frame_ended(messages);
                }
                continue;
            }
            let before = self.header.len();
            let take = (MAX_HEADER - before).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            let Some((header_len, payload_len, opcode)) = self.parse_header() else {
                if self.lost {
                    pass(&mut forward, &self.header);
                    self.header.clear();
                }
                bytes = &bytes[take..];
                continue;
            };
            bytes = &bytes[header_len - before..];
            self.kept.clear();
            self.too_long = false;
            self.header.truncate(header_len);
            if self.reader == Role::Client && opcode == relay::OPCODE {
                self.relay = Some(Vec::new());
            } else {
                pass(&mut forward, &self.header);
                let header = std::mem::take(&mut self.header);
                self.keep(&header);
                self.header = header;
                self.closed |= opcode == Opcode::Close.bits();
            }
            self.header.clear();
            self.payload_left = payload_len;
            if payload_len == 0 {
                self.frame_ended(messages);
            }
        }
    }

    /// The header at the start of `self.header`: its length, its payload's, its opcode; `None`
    /// while incomplete (or when the stream is lost).
    fn parse_header(&mut self) -> Option<(usize, u64, u8)> {
        let b0 = *self.header.first()?;
        if self.reader == Role::Client && relay::is_relay(b0) {
            let (header_len, payload_len) = relay::header(&self.header)?;
            return Some((header_len, payload_len, relay::OPCODE));
        }
        match parse_header_with(&self.header, self.reader, true) {
            Ok(Some(header)) => Some((header.header_len, header.payload_len, header.opcode.bits())),
            Ok(None) => None,
            Err(_) => {
                self.lost = true;
                None
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.reader != Role::Server || self.too_long {
            return;
        }
        if self.kept.len() + bytes.len() > MAX_KEPT_FRAME {
            self.kept = Vec::new();
            self.too_long = true;
        } else {
            self.kept.extend_from_slice(bytes);
        }
    }

    fn frame_ended(&mut self, messages: &mut Vec<Relay>) {
        self.kept.clear();
        self.too_long = false;
        if let Some(payload) = self.relay.take() {
            match Relay::decode(&payload) {
                Ok(message) => messages.push(message),
                Err(error) => tracing::warn!(%error, "a relay frame from the owner was malformed"),
            }
        }
    }

    /// Whether the stream stands between two frames.
    fn at_boundary(&self) -> bool {
        !self.lost && self.payload_left == 0 && self.header.is_empty()
    }

    /// Whether the stream can go on with another owner: between frames, or in a frame kept whole.
    fn resumable(&self) -> bool {
        !self.lost && !self.too_long
    }

    /// The bytes of the current frame so far (empty between frames), to send again.
    fn kept(&self) -> &[u8] {
        if self.header.is_empty() {
            &self.kept
        } else {
            &self.header
        }
    }
}

#[cfg(test)]
mod tests;
