//! Scenario 3's load: one chat room (seed 000), many members, one publisher.
//!
//! Every member reads everything; once the join announcements are drained (each join is
//! announced to everyone already there: N·(N−1)/2 messages), member 0 publishes, keeping a window
//! of messages in flight, each done when every member has it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::{FanoutReport, chat_message, chat_seq, connect_many};
use crate::histogram::Histogram;
use crate::wire::Connection;

/// Arguments of `dormouse-load fanout`.
#[derive(Debug, clap::Args)]
pub struct FanoutArgs {
    /// Offers permessage-deflate (as browsers do) and compresses what is sent once agreed.
    #[arg(long)]
    pub compression: bool,
    /// Server address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Room name.
    #[arg(long, default_value = "fanout")]
    pub room: String,
    /// Members, the publisher included.
    #[arg(long)]
    pub members: usize,
    /// Length of the measured stretch, in seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Messages in flight at once.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
}

/// A published message not yet received by every member.
struct InFlight {
    sent: Instant,
    received: usize,
}

struct Room {
    members: usize,
    /// System messages (welcomes and join announcements) still expected before publishing.
    joins_left: u64,
    /// Messages in flight; the first has sequence number `first_seq`.
    in_flight: VecDeque<InFlight>,
    first_seq: u64,
    latency: Histogram,
    publishes: u64,
    deliveries: u64,
    changed: Rc<Notify>,
}

impl Room {
    fn on_message(&mut self, payload: &[u8]) -> Result<()> {
        let Some(seq) = chat_seq(payload) else {
            self.joins_left = self.joins_left.saturating_sub(1);
            if self.joins_left == 0 {
                self.changed.notify_one();
            }
            return Ok(());
        };
        let index = seq
            .checked_sub(self.first_seq)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < self.in_flight.len())
            .with_context(|| format!("message #{seq} was not in flight"))?;
        let message = &mut self.in_flight[index];
        message.received += 1;
        self.latency.record(message.sent.elapsed());
        self.deliveries += 1;
        while self
            .in_flight
            .front()
            .is_some_and(|m| m.received == self.members)
        {
            self.in_flight.pop_front();
            self.first_seq += 1;
            self.publishes += 1;
            self.changed.notify_one();
        }
        Ok(())
    }
}

/// Reads a member's messages into the room; the publisher also sends what `outbox` gives it.
async fn member(
    mut connection: Connection,
    room: Rc<RefCell<Room>>,
    mut outbox: Option<mpsc::UnboundedReceiver<String>>,
) -> Result<()> {
    loop {
        let received = match &mut outbox {
            Some(outbox) => tokio::select! {
                received = connection.next_message() => received,
                Some(text) = outbox.recv() => {
                    connection.send_text(&text).await?;
                    continue;
                }
            },
            None => connection.next_message().await,
        };
        let payload = received?;
        room.borrow_mut().on_message(connection.payload(payload))?;
    }
}

/// Connects the members, waits for the joins to drain, then publishes for the measured stretch.
pub(super) async fn run(args: FanoutArgs) -> Result<FanoutReport> {
    anyhow::ensure!(
        args.members >= 1 && args.window >= 1,
        "need members and a window"
    );
    let joining = Instant::now();
    let changed = Rc::new(Notify::new());
    let members = args.members as u64;
    let room = Rc::new(RefCell::new(Room {
        members: args.members,
        joins_left: members + members * (members - 1) / 2,
        in_flight: VecDeque::new(),
        first_seq: 0,
        latency: Histogram::default(),
        publishes: 0,
        deliveries: 0,
        changed: changed.clone(),
    }));
    let connections = connect_many(args.addr, None, args.members, args.compression, |i| {
        format!("/room/{}?userId=m{i}&username=m{i}", args.room)
    })
    .await?;
    let (publish, outbox) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let mut outbox = Some(outbox);
    for connection in connections {
        tasks.spawn_local(member(connection, room.clone(), outbox.take()));
    }
    let failed = |tasks: &mut tokio::task::JoinSet<Result<()>>| -> Result<()> {
        match tasks.try_join_next() {
            Some(joined) => Err(joined?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("a member left"))),
            None => Ok(()),
        }
    };
    while room.borrow().joins_left > 0 {
        changed.notified().await;
        failed(&mut tasks)?;
    }
    let join_seconds = joining.elapsed().as_secs_f64();

    println!("measuring");
    let cpu_before = crate::proc::own_cpu_time()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let mut next_seq = 0u64;
    loop {
        {
            let mut room = room.borrow_mut();
            let open = Instant::now() < deadline;
            while open && room.in_flight.len() < args.window {
                room.in_flight.push_back(InFlight {
                    sent: Instant::now(),
                    received: 0,
                });
                publish.send(chat_message(next_seq))?;
                next_seq += 1;
            }
            if !open && room.in_flight.is_empty() {
                break;
            }
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep_until(deadline), if Instant::now() < deadline => {}
        }
        failed(&mut tasks)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let generator_cores = (crate::proc::own_cpu_time()? - cpu_before).as_secs_f64() / seconds;
    tasks.abort_all();
    let room = room.borrow();
    Ok(FanoutReport {
        members: args.members,
        join_seconds,
        publishes: room.publishes,
        deliveries: room.deliveries,
        seconds,
        latency: room.latency.clone(),
        generator_cores,
    })
}
