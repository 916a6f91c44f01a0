//! Where an object no node owns should go: the live node a rendezvous hash prefers for it. Every
//! node computes the same choice from the same list, and when a node joins or leaves only the
//! objects it wins or held move. The claim stays the authority: the choice only spreads objects.

use std::time::Duration;

use crate::error::Result;
use crate::nodes::NodeLease;
use crate::ownership::ObjectKey;
use crate::session::Session;

/// A live node, as another node reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its id.
    pub node: String,
    /// Where to forward requests to it.
    pub addr: String,
}

impl Session {
    /// The nodes whose lease holds (within `grace`) and that are not draining, by id.
    pub async fn live_nodes(&mut self, grace: Duration) -> Result<Vec<Peer>> {
        let rows = self
            .client
            .query(
                "SELECT node_id, addr FROM dormouse_nodes
                 WHERE NOT draining AND lease_expires + make_interval(secs => $1) > clock_timestamp()
                 ORDER BY node_id",
                &[&grace.as_secs_f64()],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Peer {
                node: row.get(0),
                addr: row.get(1),
            })
            .collect())
    }

    /// Marks the node as draining: it stays a member (its objects are its own until it releases
    /// them) but new objects are no longer placed on it.
    pub async fn drain(&mut self, lease: &NodeLease) -> Result<()> {
        self.client
            .execute(
                "UPDATE dormouse_nodes SET draining = true WHERE node_id = $1 AND incarnation = $2",
                &[&lease.node(), &lease.incarnation()],
            )
            .await?;
        Ok(())
    }
}

/// The node of `nodes` the rendezvous hash prefers for `key`; `None` when there is none.
pub fn preferred<'a>(key: &ObjectKey, nodes: &'a [Peer]) -> Option<&'a Peer> {
    nodes
        .iter()
        .max_by_key(|peer| (weight(&peer.node, key), &peer.node))
}

/// The weight of `node` for `key`: FNV-1a over both, then a 64-bit mix so that close inputs
/// give unrelated weights. Written out rather than taken from `std`, whose hasher may change
/// between Rust releases: nodes built by different compilers must agree.
fn weight(node: &str, key: &ObjectKey) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let parts: [&[u8]; 5] = [
        node.as_bytes(),
        &[0xff],
        key.namespace.as_bytes(),
        &[0xff],
        &key.id,
    ];
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
    }
    // splitmix64's finalizer.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(names: &[&str]) -> Vec<Peer> {
        names
            .iter()
            .map(|name| Peer {
                node: (*name).into(),
                addr: format!("{name}:8787"),
            })
            .collect()
    }

    fn key(n: u32) -> ObjectKey {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        ObjectKey {
            namespace: "ROOMS".into(),
            id,
        }
    }

    #[test]
    fn every_node_makes_the_same_choice_and_a_leaving_node_moves_only_its_own() {
        let three = peers(&["a", "b", "c"]);
        let reversed = peers(&["c", "b", "a"]);
        let mut won = std::collections::HashMap::<&str, usize>::new();
        for n in 0..3_000 {
            let choice = preferred(&key(n), &three).unwrap();
            assert_eq!(preferred(&key(n), &reversed).unwrap(), choice);
            *won.entry(choice.node.as_str()).or_default() += 1;
            // A node that was not chosen leaves: the choice stays.
            for gone in three.iter().filter(|peer| *peer != choice) {
                let rest: Vec<Peer> = three.iter().filter(|p| *p != gone).cloned().collect();
                assert_eq!(preferred(&key(n), &rest).unwrap(), choice);
            }
        }
        // Spread evenly: each of three nodes wins about a third.
        for node in ["a", "b", "c"] {
            let share = won[node];
            assert!((850..=1_150).contains(&share), "{node} won {share} of 3000");
        }
        assert_eq!(preferred(&key(1), &[]), None);
    }

    #[test]
    fn the_weight_is_fixed_across_builds() {
        // Nodes built apart must agree: the weight depends on its inputs alone, and this value
        // is pinned so that a change to it (which would move objects between versions) shows.
        assert_eq!(weight("a", &key(0)), weight("a", &key(0)));
        assert_ne!(weight("a", &key(0)), weight("b", &key(0)));
        assert_ne!(weight("a", &key(0)), weight("a", &key(1)));
        assert_eq!(weight("node-1", &key(7)), 0xacaf_d628_5ffd_bc5c);
    }
}
