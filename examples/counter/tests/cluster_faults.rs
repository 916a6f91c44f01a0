//! The counter cluster under faults, checked as `distributed.md` §4.3 says: clients increment
//! one counter through random nodes while a nemesis kills, pauses or partitions nodes; the
//! history of acknowledged values must be one that a single counter could have produced. The
//! checker is shown to catch a double activation by a switch that turns fencing off.
//!
//! `DORMOUSE_CLUSTER_SOAK=1` runs more seeds, longer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dormouse_testing::history::{Operation, Outcome, Verdict, Violation, check_counter};
use dormouse_testing::{TEST_LEASE_TTL, TestCluster, try_http_request};

const BINARY: &str = env!("CARGO_BIN_EXE_counter");
const NODES: usize = 3;
const CLIENTS: usize = 6;
const COUNTER: &str = "/counter/history";

/// Runs take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a client waits for an increment before calling its outcome unknown.
const CLIENT_PATIENCE: Duration = Duration::from_secs(3);

/// A fault the nemesis injects.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9`, then a restart.
    Kill,
    /// SIGSTOP for longer than a lease, then SIGCONT.
    Pause,
    /// Cut off from the database and from its peers, then healed.
    Partition,
}

/// A small deterministic generator (xorshift), so that a seed replays a run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One increment through `addr`, as the history records it.
async fn increment(addr: SocketAddr) -> Outcome {
    match tokio::time::timeout(CLIENT_PATIENCE, try_http_request(addr, "POST", COUNTER, "")).await {
        Ok(Ok(reply)) if reply.status == 200 => {
            reply.body.parse().map_or(Outcome::Unknown, Outcome::Ok)
        }
        // Nothing listens there (the node is down): the request was never delivered.
        Ok(Err(why)) if why.contains("Connection refused") => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

/// Runs the workload for `length` while the nemesis injects `fault` every so often, then heals
/// everything and reads the final value through every node.
async fn run(seed: u64, fault: Fault, length: Duration, extra: &[&str]) -> Verdict {
    // One run at a time: each is three nodes and a database on two cores.
    let _alone = SERIAL.lock().await;
    let mut cluster = TestCluster::start_with_links(Path::new(BINARY), NODES, extra).await;
    let addrs: Vec<SocketAddr> = (0..NODES).map(|node| cluster.addr(node)).collect();
    let history = Arc::new(Mutex::new(Vec::new()));
    let stop = Instant::now() + length;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (addrs, history) = (addrs.clone(), history.clone());
            tokio::spawn(async move {
                let mut dice = Dice(seed ^ (client as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                while Instant::now() < stop {
                    let addr = addrs[dice.below(addrs.len())];
                    let invoked = Instant::now();
                    let outcome = increment(addr).await;
                    let completed = Instant::now();
                    history.lock().unwrap().push(Operation {
                        invoked,
                        completed,
                        outcome,
                    });
                    if outcome == Outcome::Failed {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    let mut dice = Dice(seed);
    while Instant::now() + TEST_LEASE_TTL * 3 < stop {
        tokio::time::sleep(TEST_LEASE_TTL / 2).await;
        let victim = match cluster.owner_index("COUNTER").await {
            // The owner most of the time: faults of other nodes rarely matter.
            Some(owner) if dice.below(4) > 0 => owner,
            _ => dice.below(NODES),
        };
        match fault {
            Fault::Kill => {
                cluster.kill9(victim);
                tokio::time::sleep(TEST_LEASE_TTL / 2).await;
                cluster.restart(victim).await;
            }
            Fault::Pause => {
                cluster.pause(victim);
                tokio::time::sleep(TEST_LEASE_TTL * 3 / 2).await;
                cluster.resume(victim);
            }
            Fault::Partition => {
                cluster.partition(victim);
                tokio::time::sleep(TEST_LEASE_TTL * 3 / 2).await;
                cluster.heal(victim);
            }
        }
    }
    for client in clients {
        client.await.unwrap();
    }
    let finals = final_values(&cluster).await;
    let history = history.lock().unwrap().clone();
    let verdict = check_counter(&history, &finals);
    eprintln!(
        "seed {seed} {fault:?}: {} acknowledged, {} failed, {} unknown, finals {finals:?}, longest gap between acknowledgements {:?}, {} violations (first: {:?})",
        verdict.acknowledged,
        verdict.failed,
        verdict.unknown,
        longest_gap(&history),
        verdict.violations.len(),
        verdict.violations.iter().take(3).collect::<Vec<_>>()
    );
    verdict
}

/// The counter's value read through every node, once they all answer.
async fn final_values(cluster: &TestCluster) -> Vec<u64> {
    let mut finals = Vec::new();
    for node in 0..cluster.len() {
        let deadline = Instant::now() + TEST_LEASE_TTL * 10;
        let value = loop {
            let reply = try_http_request(cluster.addr(node), "GET", COUNTER, "").await;
            if let Ok(reply) = &reply
                && reply.status == 200
            {
                break reply.body.parse().expect("a number");
            }
            assert!(
                Instant::now() < deadline,
                "node {node} never answered: {reply:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        finals.push(value);
    }
    finals
}

/// The longest time between two acknowledgements: the unavailability a fault caused.
fn longest_gap(history: &[Operation]) -> Duration {
    let mut done: Vec<Instant> = history
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .map(|op| op.completed)
        .collect();
    done.sort();
    done.windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default()
}

fn soak() -> bool {
    std::env::var_os("DORMOUSE_CLUSTER_SOAK").is_some()
}

async fn no_violations(fault: Fault) {
    let (seeds, length) = if soak() {
        (1..=20, Duration::from_secs(40))
    } else {
        (1..=2, Duration::from_secs(12))
    };
    for seed in seeds {
        let verdict = run(seed, fault, length, &[]).await;
        assert_eq!(verdict.violations, [], "seed {seed}, {fault:?}");
        assert!(
            verdict.acknowledged > 20,
            "seed {seed}: the workload made progress"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kills_lose_nothing_and_never_activate_an_object_twice() {
    no_violations(Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pauses_lose_nothing_and_never_activate_an_object_twice() {
    no_violations(Fault::Pause).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_lose_nothing_and_never_activate_an_object_twice() {
    no_violations(Fault::Partition).await;
}

/// One increment through `addr`, recorded in `history`.
async fn recorded(history: &mut Vec<Operation>, addr: SocketAddr) -> Outcome {
    let invoked = Instant::now();
    let outcome = increment(addr).await;
    history.push(Operation {
        invoked,
        completed: Instant::now(),
        outcome,
    });
    outcome
}

/// The owner is paused until another node took the counter over, then woken and asked for an
/// increment: the history of the three increments, and the final value through every node.
async fn zombie_history(extra: &[&str]) -> Verdict {
    let _alone = SERIAL.lock().await;
    let cluster = TestCluster::start(Path::new(BINARY), 2, extra).await;
    let mut history = Vec::new();
    assert_eq!(
        recorded(&mut history, cluster.addr(0)).await,
        Outcome::Ok(1)
    );
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let other = 1 - owner;
    cluster.pause(owner);
    let deadline = Instant::now() + TEST_LEASE_TTL * 5;
    while !matches!(
        recorded(&mut history, cluster.addr(other)).await,
        Outcome::Ok(_)
    ) {
        assert!(Instant::now() < deadline, "no takeover");
    }
    cluster.resume(owner);
    // The woken node is asked before anything else: it must not answer from its old copy.
    recorded(&mut history, cluster.addr(owner)).await;
    let finals = final_values(&cluster).await;
    check_counter(&history, &finals)
}

#[tokio::test(flavor = "multi_thread")]
async fn without_fencing_the_checker_sees_two_activations() {
    let fenced = zombie_history(&[]).await;
    assert_eq!(
        fenced.violations,
        [],
        "with fencing, the woken node forwards"
    );
    // The same story with the fencing switched off: the woken node serves the counter from its
    // stale copy while the other owns it. The checker sees it: a value acknowledged twice, or
    // two nodes that disagree on the final value (when the woken node first served the
    // increment the other forwarded to it while it was frozen).
    let unfenced = zombie_history(&["--unsafe-no-fencing"]).await;
    assert!(
        unfenced.violations.iter().any(|violation| matches!(
            violation,
            Violation::Duplicate { .. } | Violation::NodesDisagree { .. }
        )),
        "two activations must show: {:?}",
        unfenced.violations
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_owner_never_acknowledges_after_a_takeover() {
    let _alone = SERIAL.lock().await;
    let cluster = TestCluster::start_with_links(Path::new(BINARY), 2, &[]).await;
    assert_eq!(increment(cluster.addr(0)).await, Outcome::Ok(1));
    let owner = cluster.owner_index("COUNTER").await.expect("an owner");
    let other = 1 - owner;
    // The owner's next commit hangs on its way to the database; the owner is then frozen, and
    // its commit reaches the database only after another node took the counter over.
    cluster.stall_database(owner);
    let zombie = tokio::spawn(increment_patiently(cluster.addr(owner)));
    tokio::time::sleep(TEST_LEASE_TTL / 4).await;
    cluster.pause(owner);
    let deadline = Instant::now() + TEST_LEASE_TTL * 5;
    let taken_over = loop {
        if let Outcome::Ok(value) = increment(cluster.addr(other)).await {
            break value;
        }
        assert!(Instant::now() < deadline, "no takeover");
    };
    cluster.heal(owner);
    cluster.resume(owner);
    let late = zombie.await.unwrap();
    assert!(
        !matches!(late, Outcome::Ok(_)),
        "the frozen owner acknowledged {late:?} after the takeover (value {taken_over})"
    );
    assert_eq!(
        increment(cluster.addr(other)).await,
        Outcome::Ok(taken_over + 1)
    );
    assert_eq!(
        increment(cluster.addr(owner)).await,
        Outcome::Ok(taken_over + 2),
        "the woken node forwards to the new owner"
    );
}

/// An increment that waits as long as it takes.
async fn increment_patiently(addr: SocketAddr) -> Outcome {
    match try_http_request(addr, "POST", COUNTER, "").await {
        Ok(reply) if reply.status == 200 => {
            reply.body.parse().map_or(Outcome::Unknown, Outcome::Ok)
        }
        _ => Outcome::Failed,
    }
}
