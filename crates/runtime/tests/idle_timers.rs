//! The idle timers, on tokio's paused clock: no test here waits in real time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dormouse_runtime::{ObjectState, Runtime, RuntimeConfig};
use dormouse_sdk::prelude::*;
use tokio::sync::oneshot;

static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// `GET /` answers; `GET /hold` starts `wait_until` work that ends when the test says so.
struct Idle {
    state: State,
}

impl DurableObject for Idle {
    fn new(state: State, _env: Env) -> Self {
        Idle { state }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        if req.uri().path() == "/hold" {
            let release = HOLD
                .lock()
                .unwrap()
                .take()
                .expect("a hold channel was prepared");
            self.state.wait_until(async move {
                let _ = release.await;
            });
        }
        Ok(response::text(http::StatusCode::OK, "ok"))
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

static HOLD: std::sync::Mutex<Option<oneshot::Receiver<()>>> = std::sync::Mutex::new(None);

fn runtime() -> Runtime {
    Runtime::builder()
        .config(RuntimeConfig::default())
        .durable_object::<Idle>("IDLE")
        .build()
        .unwrap()
}

fn state(runtime: &Runtime) -> Option<ObjectState> {
    runtime.objects().first().map(|o| o.state)
}

/// Lets spawned tasks run after the clock moved.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn idle_timers_follow_the_configuration() {
    let runtime = runtime();
    let stub = runtime
        .env()
        .durable_object("IDLE")
        .unwrap()
        .get_by_name("a")
        .unwrap();

    // An idle object leaves memory after `hibernate_after` (10 s), not before.
    stub.fetch_with_str("http://do/").await.unwrap();
    assert_eq!(state(&runtime), Some(ObjectState::Active));
    tokio::time::advance(Duration::from_millis(9_900)).await;
    settle().await;
    assert_eq!(state(&runtime), Some(ObjectState::Active));
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(
        state(&runtime),
        None,
        "an idle object without sockets is forgotten"
    );
    assert_eq!(DROPPED.load(Ordering::SeqCst), 1);

    // Pending wait_until work keeps it in memory past 10 s; when the work ends, the idle clock
    // starts again.
    let (release, hold) = oneshot::channel();
    *HOLD.lock().unwrap() = Some(hold);
    stub.fetch_with_str("http://do/hold").await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(state(&runtime), Some(ObjectState::Active));
    release.send(()).unwrap();
    settle().await;
    tokio::time::advance(Duration::from_millis(9_900)).await;
    settle().await;
    assert_eq!(
        state(&runtime),
        Some(ObjectState::Active),
        "the idle clock restarted when the work ended"
    );
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(state(&runtime), None);

    // Work that never ends is cancelled after the wait_until limit (15 minutes).
    let (never, hold) = oneshot::channel::<()>();
    *HOLD.lock().unwrap() = Some(hold);
    stub.fetch_with_str("http://do/hold").await.unwrap();
    tokio::time::advance(Duration::from_secs(14 * 60)).await;
    settle().await;
    assert_eq!(state(&runtime), Some(ObjectState::Active));
    tokio::time::advance(Duration::from_secs(61)).await;
    settle().await;
    assert!(never.is_closed(), "the unfinished work was cancelled");
    // The limit and the idle deadline fall on the same instant: the object was either evicted
    // then, or saw its work end and leaves memory one idle period later.
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(
        state(&runtime),
        None,
        "out of memory once the wait_until limit passed"
    );
}
