//! Seed 002 without objects: every message answered with the number of open connections.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use dormouse_ws::frame::Opcode;
use dormouse_ws::{Message, MessageDecoder, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{MAX_MESSAGE, push_frame};

/// Reads as much as arrived, answers every complete message, writes the answers in one go.
pub(super) async fn serve(
    mut stream: TcpStream,
    mut buffer: BytesMut,
    connections: &AtomicUsize,
) -> io::Result<()> {
    let mut decoder = MessageDecoder::new(Role::Server, MAX_MESSAGE);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let mut consumed = 0;
        loop {
            let step = match decoder.decode(&mut buffer[consumed..]) {
                Ok(step) => step,
                Err(error) => {
                    let code = error.close_code().to_be_bytes();
                    push_frame(&mut out, Opcode::Close, &code);
                    stream.write_all(&out).await?;
                    return Ok(());
                }
            };
            if step.consumed == 0 {
                break;
            }
            consumed += step.consumed;
            let reply = |text: &str| {
                format!(
                    "[Durable Object] message: {text}, connections: {}",
                    connections.load(Ordering::Relaxed)
                )
            };
            match step.message {
                Some(Message::Text(text)) => {
                    push_frame(&mut out, Opcode::Text, reply(&text).as_bytes());
                }
                Some(Message::Binary(_)) => {
                    push_frame(
                        &mut out,
                        Opcode::Text,
                        reply("[object ArrayBuffer]").as_bytes(),
                    );
                }
                Some(Message::Ping(payload)) => push_frame(&mut out, Opcode::Pong, &payload),
                Some(Message::Close(_)) => {
                    push_frame(&mut out, Opcode::Close, &1000u16.to_be_bytes());
                    stream.write_all(&out).await?;
                    return Ok(());
                }
                Some(Message::Pong(_)) | None => {}
            }
        }
        let _ = buffer.split_to(consumed);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        buffer.reserve(4096);
        if stream.read_buf(&mut buffer).await? == 0 {
            return Ok(());
        }
    }
}
