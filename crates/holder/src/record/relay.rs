//! A relayed socket's reports to the node that relays it (cluster mode): its connection is a
//! peer node that holds the client's, and that must be able to hand the socket to the object's
//! next owner. It is told the socket's tags and attachment whenever they change, and told that
//! the object moved instead of getting a close frame when the object leaves this node.

use bytes::Bytes;
use dormouse_ws::close;
use dormouse_ws::relay::Relay;

use super::state::{Link, Mode};
use super::{Inner, SocketRecord};

impl Inner {
    /// Whether the connection is a peer node relaying the socket for its client.
    pub(crate) fn relays(&self) -> bool {
        matches!(&self.link, Link::Attached(connection) if connection.relayed)
    }

    /// The relay frame that tells the peer the socket's state now.
    fn state_frame(&self) -> Bytes {
        let tags = match &self.mode {
            Mode::Hibernatable { tags } => tags.iter().map(|tag| tag.to_string()).collect(),
            _ => Vec::new(),
        };
        let attachment = self.attachment.as_deref().map(<[u8]>::to_vec);
        Bytes::from(Relay::State { tags, attachment }.frame())
    }
}

impl SocketRecord {
    /// Tells a relaying peer the socket's tags and attachment (nothing for a direct client, nor
    /// for a standard socket, which lives and dies with its instance and so cannot move).
    pub(crate) fn report_state(&self, inner: &mut Inner) {
        let movable = matches!(inner.mode, Mode::Hibernatable { .. });
        if movable && inner.relays() && !inner.handshake.output_ended() {
            let frame = inner.state_frame();
            self.enqueue(inner, frame);
        }
    }

    /// The frame that ends the socket's output for `code`: a close frame, or, to a relaying peer
    /// when the object moves (1012), the relay frame that says so, so that the peer keeps the
    /// client's connection open for the object's next owner.
    pub(crate) fn ending_frame(inner: &Inner, code: u16, close_frame: Bytes) -> Bytes {
        if code == close::SERVICE_RESTART && inner.relays() {
            Bytes::from(Relay::Moved.frame())
        } else {
            close_frame
        }
    }
}

#[cfg(test)]
mod tests {
    use dormouse_sdk::host::SocketHost;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use super::*;
    use crate::config::Negotiated;
    use crate::testing::{pair, plain_group};

    /// Reads exactly `expected.len()` bytes and compares them.
    async fn expect_bytes(stream: &mut TcpStream, expected: &[u8]) {
        let mut got = vec![0u8; expected.len()];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_exact(&mut got),
        )
        .await
        .expect("the frame came in time")
        .unwrap();
        assert_eq!(got, expected);
    }

    async fn attached(relayed: bool) -> (std::sync::Arc<SocketRecord>, TcpStream) {
        let (_owner, group) = plain_group();
        let socket = group.new_socket();
        socket.accept_hibernatable(&["room"]).unwrap();
        socket.couple().unwrap();
        let (client, server) = pair().await;
        let negotiated = Negotiated {
            relayed,
            ..Negotiated::default()
        };
        socket.attach(server, Bytes::new(), negotiated);
        (socket, client)
    }

    fn state(attachment: Option<Vec<u8>>) -> Vec<u8> {
        Relay::State {
            tags: vec!["room".into()],
            attachment,
        }
        .frame()
    }

    #[tokio::test]
    async fn a_relaying_peer_hears_the_state_and_the_move() {
        let (socket, mut peer) = attached(true).await;
        expect_bytes(&mut peer, &state(None)).await;
        socket.set_attachment(vec![1, 2, 3]).unwrap();
        expect_bytes(&mut peer, &state(Some(vec![1, 2, 3]))).await;
        socket.add_tag("extra").unwrap();
        let both = Relay::State {
            tags: vec!["room".into(), "extra".into()],
            attachment: Some(vec![1, 2, 3]),
        };
        expect_bytes(&mut peer, &both.frame()).await;
        socket.terminate(close::SERVICE_RESTART, "the object moved");
        expect_bytes(&mut peer, &Relay::Moved.frame()).await;
    }

    #[tokio::test]
    async fn a_relaying_peer_hears_other_ends_as_close_frames() {
        let (socket, mut peer) = attached(true).await;
        expect_bytes(&mut peer, &state(None)).await;
        socket.terminate(close::INTERNAL_ERROR, "reset");
        let close = dormouse_ws::close::CloseFrame {
            code: close::INTERNAL_ERROR,
            reason: "reset".into(),
        };
        expect_bytes(
            &mut peer,
            &dormouse_ws::encode::close_frame(Some(&close), None),
        )
        .await;
    }

    #[tokio::test]
    async fn a_direct_client_never_sees_a_relay_frame() {
        let (socket, mut client) = attached(false).await;
        socket.set_attachment(vec![9]).unwrap();
        socket.terminate(close::SERVICE_RESTART, "restarting");
        let close = dormouse_ws::close::CloseFrame {
            code: close::SERVICE_RESTART,
            reason: "restarting".into(),
        };
        expect_bytes(
            &mut client,
            &dormouse_ws::encode::close_frame(Some(&close), None),
        )
        .await;
    }
}
