//! The client side of a WebSocket connection, lean enough that one generator thread can keep up
//! with a server: frames are parsed in place in one buffer per connection, and messages are
//! handed out as byte ranges of it, never copied (a compressed one is inflated aside).
//!
//! With compression, the client offers permessage-deflate as browsers do, and compresses what
//! it sends (as browsers do) once the server agreed.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use dormouse_ws::Role;
use dormouse_ws::frame::{self, Opcode};
use dormouse_ws::{deflate, handshake};
use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Clients mask their frames (RFC 6455 §5.3); the key only has to be unpredictable to
/// intermediaries, of which there are none on loopback.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Room reserved before each read: large enough for many small frames per system call.
const READ_CHUNK: usize = 4096;

/// The end of a sync flush, stripped from each compressed message (RFC 7692 §7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Longest handshake response accepted.
const MAX_RESPONSE_HEAD: usize = 16 << 10;

/// An open WebSocket connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Received bytes; those before `start` are consumed.
    buffer: Vec<u8>,
    start: usize,
    /// Scratch space for outgoing frames.
    out: Vec<u8>,
    /// The server agreed to permessage-deflate.
    compressed: bool,
    /// The server keeps its window from message to message (it did not agree to
    /// `server_no_context_takeover`, as workerd does not): the inflater must keep it too.
    context: Option<Box<Decompress>>,
    /// The last message, inflated, when it came compressed.
    inflated: Vec<u8>,
}

/// Where a message returned by [`Connection::next_message`] is.
#[derive(Debug, Clone)]
pub enum MessageAt {
    /// In the receive buffer, as sent.
    Buffer(Range<usize>),
    /// Inflated aside.
    Inflated,
}

fn error(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, message.into())
}

impl Connection {
    /// Connects to `addr` (from `source`, if given) and opens a WebSocket at `path`, offering
    /// permessage-deflate when `compression`.
    pub async fn open(
        addr: SocketAddr,
        source: Option<IpAddr>,
        path: &str,
        compression: bool,
    ) -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let mut stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        let key = handshake::client_key(key_bytes(stream.local_addr()?));
        let mut request = handshake::client_request(&addr.to_string(), path, &key);
        if compression {
            // Chromium's offer.
            request.truncate(request.len() - 2);
            request.push_str(
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
            );
        }
        stream.write_all(request.as_bytes()).await?;

        let mut buffer = Vec::with_capacity(1024);
        let (head_len, compressed, keeps_context) = loop {
            if stream.read_buf(&mut buffer).await? == 0 {
                return Err(error(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buffer) {
                Ok(httparse::Status::Complete(len)) => {
                    check_upgrade(&response, &key)?;
                    let extensions = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
                        .map(|h| h.value.to_vec())
                        .unwrap_or_default();
                    let agreed = find(&extensions, b"permessage-deflate").is_some();
                    let keeps_context =
                        agreed && find(&extensions, b"server_no_context_takeover").is_none();
                    break (len, agreed, keeps_context);
                }
                Ok(httparse::Status::Partial) if buffer.len() < MAX_RESPONSE_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(error(
                        io::ErrorKind::InvalidData,
                        "handshake response too long",
                    ));
                }
                Err(e) => return Err(error(io::ErrorKind::InvalidData, e.to_string())),
            }
        };
        Ok(Connection {
            stream,
            buffer,
            start: head_len,
            out: Vec::with_capacity(128),
            compressed,
            context: keeps_context.then(|| Box::new(Decompress::new(false))),
            inflated: Vec::new(),
        })
    }

    /// Whether the server agreed to permessage-deflate.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(Opcode::Text, text.as_bytes()).await
    }

    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        let deflated = (self.compressed && !opcode.is_control())
            .then(|| deflate::compress(payload))
            .flatten();
        let payload = deflated.as_deref().unwrap_or(payload);
        let (header, header_len) =
            frame::header_bytes_with(true, opcode, payload.len(), Some(MASK), deflated.is_some());
        self.out.extend_from_slice(&header[..header_len]);
        let at = self.out.len();
        self.out.extend_from_slice(payload);
        frame::apply_mask(&mut self.out[at..], MASK);
        self.stream.write_all(&self.out).await
    }

    /// Waits for the next text or binary message and returns where its payload is (see
    /// [`Connection::payload`]). Pings are answered on the way; a close frame is an error.
    ///
    /// Cancel-safe, except while a pong is being written.
    pub async fn next_message(&mut self) -> io::Result<MessageAt> {
        loop {
            if let Some((opcode, payload, compressed)) = self.parse_frame()? {
                match opcode {
                    Opcode::Text | Opcode::Binary if compressed => {
                        self.inflate(payload)?;
                        return Ok(MessageAt::Inflated);
                    }
                    Opcode::Text | Opcode::Binary => return Ok(MessageAt::Buffer(payload)),
                    Opcode::Ping => {
                        let ping = self.buffer[payload].to_vec();
                        self.send(Opcode::Pong, &ping).await?;
                    }
                    Opcode::Pong => {}
                    Opcode::Close => {
                        let code = self.buffer[payload]
                            .get(..2)
                            .map(|b| u16::from_be_bytes([b[0], b[1]]));
                        return Err(error(
                            io::ErrorKind::ConnectionAborted,
                            format!("the server closed the connection (code {code:?})"),
                        ));
                    }
                    Opcode::Continuation => unreachable!("parse_frame refuses fragments"),
                }
                continue;
            }
            if self.start == self.buffer.len() {
                self.buffer.clear();
                self.start = 0;
            } else if self.start > 0 && self.buffer.capacity() - self.buffer.len() < READ_CHUNK {
                self.buffer.drain(..self.start);
                self.start = 0;
            }
            self.buffer.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(error(
                    io::ErrorKind::UnexpectedEof,
                    "the server dropped the connection",
                ));
            }
        }
    }

    /// Inflates the compressed message at `payload` into `inflated`: statelessly, or keeping the
    /// window of a server that keeps its own.
    fn inflate(&mut self, payload: Range<usize>) -> io::Result<()> {
        let bad = |e: String| error(io::ErrorKind::InvalidData, e);
        let Some(context) = &mut self.context else {
            self.inflated = deflate::inflate(&self.buffer[payload], usize::MAX >> 1)
                .map_err(|e| bad(e.to_string()))?;
            return Ok(());
        };
        self.inflated.clear();
        for input in [&self.buffer[payload], &SYNC_TAIL[..]] {
            let start = context.total_in();
            loop {
                let consumed = (context.total_in() - start) as usize;
                if self.inflated.capacity() - self.inflated.len() < READ_CHUNK {
                    self.inflated.reserve(READ_CHUNK);
                }
                context
                    .decompress_vec(
                        &input[consumed..],
                        &mut self.inflated,
                        FlushDecompress::Sync,
                    )
                    .map_err(|e| bad(e.to_string()))?;
                let done = (context.total_in() - start) as usize == input.len();
                if done && self.inflated.len() < self.inflated.capacity() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The bytes of a payload returned by [`Connection::next_message`], until the next call.
    pub fn payload(&self, at: MessageAt) -> &[u8] {
        match at {
            MessageAt::Buffer(range) => &self.buffer[range],
            MessageAt::Inflated => &self.inflated,
        }
    }

    /// The next complete frame in the buffer, consumed, and whether it came compressed.
    fn parse_frame(&mut self) -> io::Result<Option<(Opcode, Range<usize>, bool)>> {
        let available = &self.buffer[self.start..];
        let header = frame::parse_header_with(available, Role::Client, self.compressed)
            .map_err(|e| error(io::ErrorKind::InvalidData, e.to_string()))?;
        let Some(header) = header else {
            return Ok(None);
        };
        let frame_len = header
            .frame_len()
            .ok_or_else(|| error(io::ErrorKind::InvalidData, "frame too large"))?;
        if available.len() < frame_len {
            return Ok(None);
        }
        if !header.fin || header.opcode == Opcode::Continuation {
            return Err(error(
                io::ErrorKind::InvalidData,
                "fragmented messages are not expected from the servers under test",
            ));
        }
        let payload = self.start + header.header_len..self.start + frame_len;
        self.start += frame_len;
        Ok(Some((header.opcode, payload, header.compressed)))
    }
}

/// A `Sec-WebSocket-Key` that differs per connection.
fn key_bytes(local: SocketAddr) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..2].copy_from_slice(&local.port().to_be_bytes());
    if let IpAddr::V4(ip) = local.ip() {
        key[2..6].copy_from_slice(&ip.octets());
    }
    key
}

fn check_upgrade(response: &httparse::Response<'_, '_>, key: &str) -> io::Result<()> {
    if response.code != Some(101) {
        return Err(error(
            io::ErrorKind::ConnectionRefused,
            format!("upgrade refused with status {:?}", response.code),
        ));
    }
    let expected = handshake::accept_key(key);
    let accepted = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == expected.as_bytes()
    });
    if !accepted {
        return Err(error(
            io::ErrorKind::InvalidData,
            "wrong Sec-WebSocket-Accept",
        ));
    }
    Ok(())
}

/// Finds `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
