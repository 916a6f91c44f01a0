//! Alarms in a cluster: an alarm set on one node fires once, on another node, after the first
//! one left (its objects released) — whichever node then claims the object.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dormouse::axum::Router;
use dormouse::axum::extract::{Path, Request as AxumRequest, State as Extract};
use dormouse::axum::routing::any;
use dormouse::http::{Method, StatusCode};
use dormouse::prelude::*;
use dormouse_testing::{Postgres, TEST_CLUSTER_SECRET, TestServer, free_port_at};

/// Sets an alarm on `POST` (in the number of milliseconds the body says); counts its firings.
struct Reminder {
    state: State,
}

impl DurableObject for Reminder {
    fn new(state: State, _env: Env) -> Self {
        Reminder { state }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        let storage = self.state.storage()?;
        if req.method() == Method::POST {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            storage.set_alarm(now + 300)?;
            return Ok(response::text(StatusCode::OK, "set"));
        }
        let fired: u64 = storage.get("fired")?.unwrap_or(0);
        Ok(response::text(StatusCode::OK, fired.to_string()))
    }

    async fn alarm(&mut self, _info: AlarmInfo) -> Result<()> {
        let storage = self.state.storage()?;
        let fired: u64 = storage.get("fired")?.unwrap_or(0);
        storage.put("fired", fired + 1)
    }
}

async fn reminder(
    Extract(env): Extract<Env>,
    Path(name): Path<String>,
    req: AxumRequest,
) -> Result<Response> {
    env.durable_object("REMINDER")?
        .get_by_name(&name)?
        .fetch(req)
        .await
}

fn app() -> App {
    App::new()
        .durable_object::<Reminder>("REMINDER")
        .worker(|env| {
            Router::new()
                .route("/r/{name}", any(reminder))
                .with_state(env)
        })
}

async fn node(db: &Postgres, last_octet: u8) -> TestServer {
    let listen = free_port_at(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)));
    let url = db.url();
    TestServer::start_with(app(), move |args| {
        args.listen = listen;
        args.cluster_database = Some(url);
        args.cluster_secret = Some(TEST_CLUSTER_SECRET.into());
        args.lease_ttl = Duration::from_secs(2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_set_on_a_node_that_left_fires_on_another() {
    let db = Postgres::start();
    let first = node(&db, 2).await;
    let second = node(&db, 3).await;
    assert_eq!(first.post("/r/x", "").await.body, "set");
    // The first node leaves before the alarm is due: the object is released, its alarm kept.
    first.stop().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Reading the count through the second node claims the object there, alarm included.
        let fired = second.request("GET", "/r/x", &[]).await.body;
        if fired == "1" {
            break;
        }
        assert_eq!(fired, "0", "the alarm fires once");
        assert!(
            Instant::now() < deadline,
            "the alarm never fired on the second node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = second.metrics().await;
    assert_eq!(metrics.get("dormouse_alarms_total", "REMINDER"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_of_an_object_nobody_touches_fires_through_the_poll() {
    let db = Postgres::start();
    let first = node(&db, 4).await;
    let second = node(&db, 5).await;
    assert_eq!(first.post("/r/y", "").await.body, "set");
    first.stop().await;
    // Nobody asks for the object: the second node finds the due alarm in the cluster database.
    let deadline = Instant::now() + Duration::from_secs(20);
    while second
        .metrics()
        .await
        .get("dormouse_alarms_total", "REMINDER")
        < 1.0
    {
        assert!(Instant::now() < deadline, "no node picked the alarm up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.request("GET", "/r/y", &[]).await.body != "1" {
        assert!(Instant::now() < deadline, "the alarm never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
