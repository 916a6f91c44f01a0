//! The seed examples (and the counter) against the same programs on workerd: the same frames in, the same frames out,
//! before and after hibernation.
//!
//! Each scenario runs once against Dormouse (hibernation forced) and once against workerd
//! (hibernation by its own 10 s timer, which cannot be driven from outside), and the normalised
//! transcripts must be equal. Known, deliberate difference: when a client closes, Dormouse answers
//! the close frame itself with the client's own code and reason (Cloudflare's behaviour since the
//! 2026-04-07 compatibility date); this workerd configuration uses an older date, where the seed's
//! handler answers with its own reason. Only close codes are compared.

use std::path::Path;

use dormouse_oracle::scenarios::{Target, counter, seed000, seed001, seed002};
use dormouse_testing::{TestServer, Workerd};

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_answer_like_the_seeds_on_workerd() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("workerd/config.capnp");
    let workerd = Workerd::start(&config).await;
    let echo = TestServer::start(echo::app()).await;
    let sessions = TestServer::start(hibernation_server::app()).await;
    let chat = TestServer::start(chat_room::app()).await;
    let counters = TestServer::start(counter::app()).await;

    // workerd: the scenarios at once, so that its eviction timer is waited out once.
    let (oracle_002, oracle_001, oracle_000, oracle_counter) = tokio::join!(
        seed002(
            Target::new(workerd.addr("h002")),
            Workerd::wait_for_eviction
        ),
        seed001(
            Target::new(workerd.addr("h001")),
            Workerd::wait_for_eviction
        ),
        seed000(
            Target::new(workerd.addr("h000")),
            Workerd::wait_for_eviction
        ),
        counter(
            Target::new(workerd.addr("hcounter")),
            Workerd::wait_for_eviction
        ),
    );
    // workerd did hibernate the chat room: its constructor ran again with both sockets.
    assert!(
        workerd
            .stdout()
            .iter()
            .any(|line| line == "ChatRoom constructor: restored 2 connections"),
        "workerd never re-created the chat room: {:?}",
        workerd.stdout()
    );

    let ours_002 = seed002(Target::new(echo.addr()), || {
        echo.hibernate(echo::BINDING, "foo")
    })
    .await;
    let ours_001 = seed001(Target::new(sessions.addr()), || {
        sessions.hibernate(hibernation_server::BINDING, "foo")
    })
    .await;
    let ours_000 = seed000(Target::new(chat.addr()), || {
        chat.hibernate(chat_room::BINDING, "oracle")
    })
    .await;

    let ours_counter = counter(Target::new(counters.addr()), || {
        counters.hibernate(counter::BINDING, "oracle")
    })
    .await;

    assert_eq!(ours_002, oracle_002, "seed 002 (echo)");
    assert_eq!(ours_001, oracle_001, "seed 001 (hibernation server)");
    assert_eq!(ours_000, oracle_000, "seed 000 (chat room)");
    assert_eq!(ours_counter, oracle_counter, "counter");
    // Dormouse really hibernated and woke each object.
    for (server, binding) in [
        (&echo, echo::BINDING),
        (&sessions, hibernation_server::BINDING),
        (&chat, chat_room::BINDING),
    ] {
        let metrics = server.metrics().await;
        assert_eq!(
            metrics.get("dormouse_object_wakes_total", binding),
            1.0,
            "{binding}"
        );
    }
    eprintln!(
        "transcripts match: {} + {} + {} + {} lines",
        ours_002.len(),
        ours_001.len(),
        ours_000.len(),
        ours_counter.len()
    );
}
