//! Seed 000's chat room without objects: a shared list of members per room, each with a writer
//! task fed by a channel; a broadcast encodes the frame once and hands every member a reference.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use dormouse_ws::frame::Opcode;
use dormouse_ws::{Message, MessageDecoder, Role};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::{MAX_MESSAGE, push_frame};

/// Bytes gathered from the channel before one write.
const WRITE_BATCH: usize = 64 << 10;

static NEXT_MEMBER: AtomicU64 = AtomicU64::new(0);

/// Every room, by name.
#[derive(Default)]
pub(super) struct Rooms(Mutex<HashMap<String, Arc<Room>>>);

#[derive(Default)]
pub(super) struct Room {
    members: Mutex<Vec<Member>>,
}

struct Member {
    id: u64,
    outbox: mpsc::UnboundedSender<Bytes>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn text_frame(value: &Value) -> Bytes {
    let mut out = BytesMut::new();
    push_frame(&mut out, Opcode::Text, value.to_string().as_bytes());
    out.freeze()
}

impl Room {
    /// Sends `frame` to every member but `except`.
    fn broadcast(&self, frame: &Bytes, except: Option<u64>) {
        for member in self.members.lock().expect("room lock").iter() {
            if Some(member.id) != except {
                let _ = member.outbox.send(frame.clone());
            }
        }
    }
}

/// The room, user id and user name of a `/room/{id}?userId=..&username=..` target.
fn parse_target(target: &str) -> Option<(String, String, String)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let room = path.strip_prefix("/room/")?.split('/').next()?.to_owned();
    let mut user_id = "anonymous".to_owned();
    let mut username = "Anonymous".to_owned();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("userId", value)) if !value.is_empty() => user_id = value.to_owned(),
            Some(("username", value)) if !value.is_empty() => username = value.to_owned(),
            _ => {}
        }
    }
    Some((room, user_id, username))
}

/// One member's connection: joins, relays chat and typing, leaves.
pub(super) async fn serve(
    stream: TcpStream,
    mut buffer: BytesMut,
    target: &str,
    rooms: &Rooms,
) -> io::Result<()> {
    let Some((name, user_id, username)) = parse_target(target) else {
        return Ok(());
    };
    let (mut reader, writer) = stream.into_split();
    let (outbox, inbox) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(writer, inbox));
    let id = NEXT_MEMBER.fetch_add(1, Ordering::Relaxed);
    let room = rooms
        .0
        .lock()
        .expect("rooms lock")
        .entry(name.clone())
        .or_default()
        .clone();
    let joined = json!({ "type": "system", "text": format!("{username} joined the room"), "timestamp": now_ms() });
    room.broadcast(&text_frame(&joined), None);
    let online = {
        let mut members = room.members.lock().expect("room lock");
        members.push(Member {
            id,
            outbox: outbox.clone(),
        });
        members.len()
    };
    let welcome = json!({ "type": "system", "text": format!("Welcome to the chat room! {online} user(s) online."), "timestamp": now_ms() });
    let _ = outbox.send(text_frame(&welcome));

    let mut decoder = MessageDecoder::new(Role::Server, MAX_MESSAGE);
    let ended = 'connection: loop {
        let mut consumed = 0;
        loop {
            let Ok(step) = decoder.decode(&mut buffer[consumed..]) else {
                break 'connection Ok(());
            };
            if step.consumed == 0 {
                break;
            }
            consumed += step.consumed;
            match step.message {
                Some(Message::Text(text)) => {
                    let Ok(data) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    let kind = data.get("type").and_then(Value::as_str);
                    if kind == Some("chat") {
                        let chat = json!({ "type": "chat", "userId": user_id, "username": username, "text": data.get("text"), "timestamp": now_ms() });
                        room.broadcast(&text_frame(&chat), None);
                    } else if kind == Some("typing") {
                        let typing =
                            json!({ "type": "typing", "userId": user_id, "username": username });
                        room.broadcast(&text_frame(&typing), Some(id));
                    }
                }
                Some(Message::Ping(payload)) => {
                    let mut pong = BytesMut::new();
                    push_frame(&mut pong, Opcode::Pong, &payload);
                    let _ = outbox.send(pong.freeze());
                }
                Some(Message::Close(_)) => {
                    let mut close = BytesMut::new();
                    push_frame(&mut close, Opcode::Close, &1000u16.to_be_bytes());
                    let _ = outbox.send(close.freeze());
                    break 'connection Ok(());
                }
                Some(Message::Binary(_) | Message::Pong(_)) | None => {}
            }
        }
        let _ = buffer.split_to(consumed);
        buffer.reserve(4096);
        match reader.read_buf(&mut buffer).await {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(error) => break Err(error),
        }
    };
    leave(rooms, &name, &room, id, &username);
    ended
}

fn leave(rooms: &Rooms, name: &str, room: &Arc<Room>, id: u64, username: &str) {
    let empty = {
        let mut members = room.members.lock().expect("room lock");
        members.retain(|m| m.id != id);
        members.is_empty()
    };
    if empty {
        let mut rooms = rooms.0.lock().expect("rooms lock");
        if room.members.lock().expect("room lock").is_empty() {
            rooms.remove(name);
        }
    } else {
        let left = json!({ "type": "system", "text": format!("{username} left the room"), "timestamp": now_ms() });
        room.broadcast(&text_frame(&left), None);
    }
}

/// Writes what the channel brings, many frames per system call when they queue up.
async fn write_loop(mut writer: OwnedWriteHalf, mut inbox: mpsc::UnboundedReceiver<Bytes>) {
    let mut out = BytesMut::with_capacity(4096);
    while let Some(frame) = inbox.recv().await {
        out.extend_from_slice(&frame);
        while out.len() < WRITE_BATCH {
            match inbox.try_recv() {
                Ok(frame) => out.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if writer.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}
