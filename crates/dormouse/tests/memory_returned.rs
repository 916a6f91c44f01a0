//! Hibernation returns an instance's memory to the operating system.
//!
//! Alone in its test binary: resident memory is a property of the whole process.

use dormouse::axum::Router;
use dormouse::axum::extract::{Path, Request as AxumRequest, State as Extract};
use dormouse::axum::routing::get;
use dormouse::prelude::*;
use dormouse_testing::TestServer;

/// Bytes of in-memory state each object builds in its constructor.
const STATE_BYTES: usize = 8 << 20;
const OBJECTS: usize = 32;

/// An object with a large in-memory cache (say, a document being edited).
struct Heavy {
    state: State,
    cache: Vec<u8>,
}

impl DurableObject for Heavy {
    fn new(state: State, _env: Env) -> Self {
        // Touch every page, as real state would.
        Heavy {
            state,
            cache: vec![0xAB; STATE_BYTES],
        }
    }

    async fn fetch(&mut self, _req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server)?;
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> Result<()> {
        ws.send_with_str(format!(
            "cache holds {} bytes",
            self.cache.iter().filter(|b| **b == 0xAB).count()
        ))
    }
}

async fn route(
    Extract(env): Extract<Env>,
    Path(name): Path<String>,
    req: AxumRequest,
) -> Result<Response> {
    env.durable_object("HEAVY")?
        .get_by_name(&name)?
        .fetch(req)
        .await
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test]
async fn hibernating_objects_return_their_memory() {
    let app = App::new().durable_object::<Heavy>("HEAVY").worker(|env| {
        Router::new()
            .route("/heavy/{name}", get(route))
            .with_state(env)
    });
    let server = TestServer::start(app).await;
    let baseline = resident_bytes();

    let mut clients = Vec::new();
    for i in 0..OBJECTS {
        let mut client = server.connect(&format!("/heavy/h{i}")).await;
        client.send_text("size?").await;
        assert_eq!(
            client.recv_text().await,
            format!("cache holds {STATE_BYTES} bytes")
        );
        clients.push(client);
    }
    let loaded = resident_bytes();
    let state_total = OBJECTS * STATE_BYTES;
    eprintln!(
        "resident: baseline {} MiB, {OBJECTS} objects loaded {} MiB",
        baseline >> 20,
        loaded >> 20
    );
    assert!(
        loaded > baseline + state_total * 9 / 10,
        "the objects' state is resident"
    );

    let report = server.runtime().hibernate_all().await;
    assert_eq!(report.hibernated, OBJECTS);
    let hibernated = resident_bytes();
    eprintln!("resident after hibernating them: {} MiB", hibernated >> 20);
    assert!(
        hibernated < baseline + state_total / 10,
        "at least 90% of the objects' memory is returned ({} MiB resident, baseline {} MiB)",
        hibernated >> 20,
        baseline >> 20
    );
    // The sockets stay open; a message wakes its object, which rebuilds its state.
    clients[3].send_text("size?").await;
    assert_eq!(
        clients[3].recv_text().await,
        format!("cache holds {STATE_BYTES} bytes")
    );
}
