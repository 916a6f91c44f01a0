//! WebSocket clients for tests: a real RFC 6455 client, and a raw TCP one for broken frames.

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::DEADLINE;

/// A WebSocket client whose every wait has a deadline.
#[derive(Debug)]
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pings: u64,
}

impl WsClient {
    /// Connects to `url` within `limit`; the error in words otherwise.
    pub async fn try_connect(url: &str, limit: std::time::Duration) -> Result<WsClient, String> {
        match tokio::time::timeout(limit, tokio_tungstenite::connect_async(url)).await {
            Err(_) => Err(format!("connect {url}: no answer within {limit:?}")),
            Ok(Err(error)) => Err(format!("connect {url}: {error}")),
            Ok(Ok((stream, _))) => Ok(WsClient { stream, pings: 0 }),
        }
    }

    /// Connects to `url` offering `protocols` (`Sec-WebSocket-Protocol`); returns the client and
    /// the subprotocol the server chose, or the failure in words (the client library checks the
    /// server's choice against the offer).
    pub async fn try_connect_offering(
        url: &str,
        protocols: &[&str],
    ) -> Result<(WsClient, Option<String>), String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if !protocols.is_empty() {
            let offer = protocols.join(", ");
            request.headers_mut().insert(
                "sec-websocket-protocol",
                offer.parse().map_err(|_| format!("bad offer {offer:?}"))?,
            );
        }
        match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request)).await {
            Err(_) => Err(format!("connect {url}: no answer within {DEADLINE:?}")),
            Ok(Err(error)) => Err(format!("connect {url}: {error}")),
            Ok(Ok((stream, response))) => {
                let chosen = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                Ok((WsClient { stream, pings: 0 }, chosen))
            }
        }
    }

    /// Connects to `url`; panics if the upgrade fails.
    pub async fn connect(url: &str) -> WsClient {
        // The server may legitimately send 32 MiB messages; tungstenite's default stops at 16 MiB.
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (stream, _) = tokio::time::timeout(DEADLINE, connect)
            .await
            .unwrap_or_else(|_| panic!("connect {url}: timed out"))
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        WsClient { stream, pings: 0 }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send text");
    }

    /// Sends a text message; false if the connection is already gone (the server closed it).
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.stream.send(Message::text(text)).await.is_ok()
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.stream
            .send(Message::binary(data.to_vec()))
            .await
            .expect("send binary");
    }

    /// Sends a protocol ping.
    pub async fn send_ping(&mut self, payload: &[u8]) {
        self.stream
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .expect("send ping");
    }

    /// The next frame of any kind (pongs included), or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Message> {
        match tokio::time::timeout(DEADLINE, self.stream.next()).await {
            Err(_) => panic!("no frame within {DEADLINE:?}"),
            Ok(None) => None,
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(error))) => panic!("WebSocket error: {error}"),
        }
    }

    /// The next text message; panics on anything else.
    pub async fn recv_text(&mut self) -> String {
        match self.next().await {
            Some(Message::Text(text)) => text.to_string(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next binary message; panics on anything else.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match self.next().await {
            Some(Message::Binary(data)) => data.to_vec(),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// The next pong's payload; panics on anything else.
    pub async fn recv_pong(&mut self) -> Vec<u8> {
        match self.next().await {
            Some(Message::Pong(payload)) => payload.to_vec(),
            other => panic!("expected a pong, got {other:?}"),
        }
    }

    /// The next `count` text messages.
    pub async fn recv_texts(&mut self, count: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.recv_text().await);
        }
        out
    }

    /// Proves the server sent nothing else so far: sends a ping and expects its pong first.
    /// (The server answers pings in order with everything else it sends on the socket.)
    pub async fn expect_nothing(&mut self) {
        self.pings += 1;
        let payload = format!("barrier-{}", self.pings).into_bytes();
        self.send_ping(&payload).await;
        match self.next().await {
            Some(Message::Pong(pong)) if pong.as_ref() == payload.as_slice() => {}
            other => panic!("expected nothing before the pong, got {other:?}"),
        }
    }

    /// Starts the close handshake and returns the server's close frame (code, reason). Messages
    /// the server sent before it saw our close frame are skipped.
    pub async fn close(&mut self, code: u16, reason: &str) -> Option<(u16, String)> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        self.stream.close(Some(frame)).await.expect("send close");
        self.wait_close(true).await
    }

    /// The next text message, or the server's close frame (`Err`, with its code and reason) once
    /// the connection ends; panics on anything else.
    pub async fn recv_text_or_close(&mut self) -> Result<String, Option<(u16, String)>> {
        loop {
            match self.next().await {
                Some(Message::Text(text)) => return Ok(text.to_string()),
                Some(Message::Pong(_)) => continue,
                Some(Message::Close(frame)) => {
                    return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                None => return Err(None),
                Some(other) => panic!("expected text or a close frame, got {other:?}"),
            }
        }
    }

    /// Waits for the server's close frame (skipping pongs only) and the end of the stream.
    pub async fn expect_close(&mut self) -> Option<(u16, String)> {
        self.wait_close(false).await
    }

    async fn wait_close(&mut self, skip_data: bool) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(DEADLINE, self.stream.next()).await {
                Err(_) => panic!("no close frame within {DEADLINE:?}"),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    // Drain to the end of the stream so the handshake completes.
                    let _ = tokio::time::timeout(DEADLINE, async {
                        while self.stream.next().await.is_some() {}
                    })
                    .await;
                    return frame;
                }
                Ok(Some(Ok(Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Text(_) | Message::Binary(_)))) if skip_data => continue,
                Ok(Some(Ok(other))) => panic!("expected a close frame, got {other:?}"),
                Ok(Some(Err(error))) => panic!("expected a close frame, got error {error}"),
                Ok(None) => panic!("stream ended without a close frame"),
            }
        }
    }

    /// Drops the TCP connection without a close frame.
    pub async fn drop_connection(self) {
        let mut stream = self.stream.into_inner();
        if let MaybeTlsStream::Plain(tcp) = &mut stream {
            let _ = tcp.shutdown().await;
        }
    }
}

/// A TCP connection that has completed a WebSocket handshake to `path`, for sending frames the
/// normal client refuses to send (unmasked, reserved bits, …). Returns the stream and any bytes
/// read past the handshake response.
pub async fn connect_raw(addr: std::net::SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    handshake_raw(stream, path).await
}

/// Completes a WebSocket handshake to `path` on a connected stream (one set up with particular
/// socket options, say). Returns the stream and any bytes read past the handshake response.
pub async fn handshake_raw(mut stream: TcpStream, path: &str) -> (TcpStream, Vec<u8>) {
    let host = stream.peer_addr().expect("a connected stream");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write handshake");
    let mut buffer = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.expect("read handshake");
            assert!(
                n > 0,
                "connection closed during handshake: {}",
                String::from_utf8_lossy(&buffer)
            );
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
                return buffer.split_off(end + 4);
            }
        }
    };
    let rest = tokio::time::timeout(DEADLINE, read)
        .await
        .expect("handshake within deadline");
    (stream, rest)
}

/// A client frame with an arbitrary first byte (FIN, RSV bits, opcode) and `payload`, masked as
/// RFC 6455 requires of clients.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Reads from a raw stream until `want` bytes arrived or the peer closed; bounded by the deadline.
pub async fn read_at_least(stream: &mut TcpStream, mut buffer: Vec<u8>, want: usize) -> Vec<u8> {
    let read = async {
        while buffer.len() < want {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("read within deadline")
}
