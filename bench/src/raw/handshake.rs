//! The HTTP side of the raw baseline: read one upgrade request, answer 101 or 400.

use std::io;

use bytes::BytesMut;
use dormouse_ws::handshake::accept_key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest request head accepted.
const MAX_HEAD: usize = 16 << 10;

/// Reads the request and completes the upgrade. Returns the request target and the bytes read
/// past the head, or `None` when the request was refused (and answered).
pub(super) async fn accept(stream: &mut TcpStream) -> io::Result<Option<(String, BytesMut)>> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(&buffer) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => continue,
            _ => return refuse(stream, "malformed request").await,
        };
        let key = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
            .and_then(|h| std::str::from_utf8(h.value).ok());
        let (Some(key), Some(path), Some("GET")) = (key, request.path, request.method) else {
            return refuse(
                stream,
                "expected a WebSocket upgrade (GET with Sec-WebSocket-Key)",
            )
            .await;
        };
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        );
        let path = path.to_owned();
        stream.write_all(answer.as_bytes()).await?;
        let rest = buffer.split_off(head_len);
        return Ok(Some((path, rest)));
    }
}

async fn refuse(stream: &mut TcpStream, why: &str) -> io::Result<Option<(String, BytesMut)>> {
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}",
        why.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    Ok(None)
}
