//! A forwarded WebSocket joined to its client: the client's connection to this node and this
//! node's connection to the object's owner, byte for byte. The owner's side is followed frame by
//! frame, so that when the owner goes away without closing the socket (it died, or was cut off),
//! the client gets a close frame it can act on (1012: reconnect) rather than a dropped
//! connection, whenever the owner's last frame ended whole.

use std::time::Duration;

use dormouse_runtime::placement::ForwardedUpgrade;
use dormouse_ws::frame::parse_header_with;
use dormouse_ws::{Opcode, Role, close};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::per_address::AddressLease;

/// How long one side may take to finish after the other ended (a close handshake).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Bytes read from the owner at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The reason the client reads when the owner went away.
const OWNER_GONE: &str = "the Durable Object's node went away; reconnect";

/// Joins the client's connection, once upgraded, to the owner's, until both ended.
pub(crate) fn join(client: OnUpgrade, owner: ForwardedUpgrade, lease: Option<AddressLease>) {
    tokio::spawn(async move {
        // The client's place in its address's count, held while the connection is open.
        let _lease = lease;
        let Some(owner) = owner.take() else {
            tracing::error!("a forwarded upgrade was joined twice");
            return;
        };
        let owner = match owner.await {
            Ok(owner) => owner,
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
        splice(client, owner).await;
    });
}

/// Copies both ways until both sides ended (or one ended and the other took too long).
async fn splice(client: impl AsyncRead + AsyncWrite, owner: impl AsyncRead + AsyncWrite) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut owner_read, mut owner_write) = tokio::io::split(owner);
    let upstream = async {
        let copied = tokio::io::copy(&mut client_read, &mut owner_write).await;
        let _ = owner_write.shutdown().await;
        copied.map(drop)
    };
    let downstream = async {
        let mut frames = Frames::default();
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            let read = match owner_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            frames.feed(&buffer[..read]);
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
        if frames.ended_without_close() {
            let _ = client_write.write_all(&owner_gone_frame()).await;
        }
        let _ = client_write.shutdown().await;
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        _ = &mut upstream => {
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut downstream).await;
        }
        () = &mut downstream => {
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut upstream).await;
        }
    }
}

/// The close frame (1012) a client gets when the owner went away.
fn owner_gone_frame() -> bytes::Bytes {
    let mut payload = close::SERVICE_RESTART.to_be_bytes().to_vec();
    payload.extend_from_slice(OWNER_GONE.as_bytes());
    dormouse_ws::encode::frame(true, Opcode::Close, &payload, None)
}

/// Where the owner's stream of frames is.
#[derive(Debug, Default)]
struct Frames {
    /// The start of a header not yet complete.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The owner sent a close frame.
    closed: bool,
    /// The stream stopped making sense as frames: where frames end is no longer known.
    lost: bool,
}

impl Frames {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.lost {
            if self.payload_left > 0 {
                let skipped = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= skipped;
                bytes = &bytes[skipped as usize..];
                continue;
            }
            let before = self.header.len();
            let take = (MAX_HEADER - before).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            match parse_header_with(&self.header, Role::Client, true) {
                Ok(Some(header)) => {
                    bytes = &bytes[header.header_len - before..];
                    self.header.clear();
                    self.payload_left = header.payload_len;
                    self.closed |= header.opcode == Opcode::Close;
                }
                Ok(None) => bytes = &bytes[take..],
                Err(_) => self.lost = true,
            }
        }
    }

    /// Whether the owner's stream ended between two frames without a close frame: the client can
    /// be sent one.
    fn ended_without_close(&self) -> bool {
        !self.closed && !self.lost && self.payload_left == 0 && self.header.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use dormouse_ws::encode;

    use super::*;

    fn frames_of(chunks: &[&[u8]]) -> Frames {
        let mut frames = Frames::default();
        for chunk in chunks {
            frames.feed(chunk);
        }
        frames
    }

    #[test]
    fn whole_frames_in_any_chunks_end_at_a_boundary() {
        let mut stream = encode::frame(true, Opcode::Text, b"hello", None).to_vec();
        stream.extend_from_slice(&encode::frame(true, Opcode::Binary, &[7; 300], None));
        stream.extend_from_slice(&encode::frame(true, Opcode::Text, &[b'x'; 70_000], None));
        for split in [1, 2, 3, 7, 8, 300, 4096, stream.len()] {
            let chunks: Vec<&[u8]> = stream.chunks(split).collect();
            assert!(
                frames_of(&chunks).ended_without_close(),
                "chunks of {split}"
            );
        }
    }

    #[test]
    fn a_frame_cut_short_is_no_boundary() {
        let frame = encode::frame(true, Opcode::Text, b"hello", None);
        assert!(!frames_of(&[&frame[..4]]).ended_without_close());
        assert!(!frames_of(&[&frame[..1]]).ended_without_close());
    }

    #[test]
    fn a_close_from_the_owner_needs_no_other() {
        let mut payload = close::NORMAL.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let frame = encode::frame(true, Opcode::Close, &payload, None);
        assert!(!frames_of(&[&frame]).ended_without_close());
    }

    #[test]
    fn garbage_loses_track() {
        assert!(!frames_of(&[&[0xFF, 0xFF, 0xFF]]).ended_without_close());
    }

    #[tokio::test]
    async fn a_client_hears_1012_when_the_owner_goes_away() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (owner, mut owner_peer) = tokio::io::duplex(1024);
        let spliced = tokio::spawn(splice(client, owner));
        let text = encode::frame(true, Opcode::Text, b"hi", None);
        owner_peer.write_all(&text).await.unwrap();
        drop(owner_peer);
        let mut received = Vec::new();
        client_peer.read_to_end(&mut received).await.unwrap();
        let mut expected = text.to_vec();
        expected.extend_from_slice(&owner_gone_frame());
        assert_eq!(received, expected);
        drop(client_peer);
        spliced.await.unwrap();
    }
}
