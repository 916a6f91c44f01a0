//! A checker of counter histories, for the cluster's fault tests: clients increment one counter
//! through random nodes while nodes crash, pause and are cut off, and the history of what each
//! increment returned must be one that a single, never-lost counter could have produced.
//!
//! For an increment-only counter these checks together are a complete linearizability check, in
//! O(n log n):
//! 1. every acknowledged value is distinct (a repeat means two activations, or a lost write);
//! 2. an increment acknowledged before another began got the smaller value (real-time order);
//! 3. the final value is at least the number acknowledged and at most that plus the number whose
//!    outcome is unknown, and no acknowledged value exceeds it;
//! 4. every node reads the same final value.

use std::collections::HashMap;
use std::time::Instant;

/// How one increment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged, with the counter's value after it.
    Ok(u64),
    /// Refused before it could have taken effect (a definite failure).
    Failed,
    /// Unknown: a timeout, a reset, an error after the request may have been delivered.
    Unknown,
}

/// One increment: when it was sent, when its answer came, and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// When the client sent it.
    pub invoked: Instant,
    /// When the client had its outcome.
    pub completed: Instant,
    /// How it ended.
    pub outcome: Outcome,
}

/// A check the history failed, in words that point at the operations concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two acknowledged increments returned the same value.
    Duplicate {
        /// The value.
        value: u64,
    },
    /// An increment acknowledged before another was sent returned a value not below the other's.
    OutOfOrder {
        /// The earlier increment's value.
        earlier: u64,
        /// The later increment's value.
        later: u64,
    },
    /// The final value cannot follow from the outcomes.
    FinalOutOfBounds {
        /// The final value read.
        final_value: u64,
        /// The least it could be.
        at_least: u64,
        /// The most it could be.
        at_most: u64,
    },
    /// Nodes read different final values.
    NodesDisagree {
        /// What each node read.
        finals: Vec<u64>,
    },
}

/// What a history holds, and what it got wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Acknowledged increments.
    pub acknowledged: usize,
    /// Refused increments.
    pub failed: usize,
    /// Increments whose outcome is unknown.
    pub unknown: usize,
    /// Every check it failed; empty for a correct history.
    pub violations: Vec<Violation>,
}

/// Checks `history` against the final values `finals` read through every node.
pub fn check_counter(history: &[Operation], finals: &[u64]) -> Verdict {
    let acknowledged: Vec<(Instant, Instant, u64)> = history
        .iter()
        .filter_map(|op| match op.outcome {
            Outcome::Ok(value) => Some((op.invoked, op.completed, value)),
            _ => None,
        })
        .collect();
    let count = |wanted: Outcome| history.iter().filter(|op| op.outcome == wanted).count();
    let (failed, unknown) = (count(Outcome::Failed), count(Outcome::Unknown));
    let mut violations = Vec::new();

    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (_, _, value) in &acknowledged {
        *seen.entry(*value).or_default() += 1;
    }
    let mut repeated: Vec<u64> = seen
        .into_iter()
        .filter(|(_, times)| *times > 1)
        .map(|(value, _)| value)
        .collect();
    repeated.sort_unstable();
    violations.extend(
        repeated
            .into_iter()
            .map(|value| Violation::Duplicate { value }),
    );

    // Sweep by invocation time, keeping the largest value among the increments completed before
    // it: each must exceed that.
    let mut by_completion = acknowledged.clone();
    by_completion.sort_by_key(|(_, completed, _)| *completed);
    let mut by_invocation = acknowledged.clone();
    by_invocation.sort_by_key(|(invoked, _, _)| *invoked);
    let mut done = by_completion.iter().peekable();
    let mut highest_done: Option<u64> = None;
    for (invoked, _, value) in &by_invocation {
        while let Some((_, completed, earlier)) = done.peek() {
            if completed >= invoked {
                break;
            }
            highest_done = Some(highest_done.map_or(*earlier, |h| h.max(*earlier)));
            done.next();
        }
        if let Some(earlier) = highest_done
            && earlier >= *value
        {
            violations.push(Violation::OutOfOrder {
                earlier,
                later: *value,
            });
        }
    }

    if let Some(&final_value) = finals.first() {
        let at_least = acknowledged.len() as u64;
        let at_most = at_least + unknown as u64;
        let highest = acknowledged.iter().map(|(_, _, v)| *v).max().unwrap_or(0);
        if final_value < at_least || final_value > at_most || highest > final_value {
            violations.push(Violation::FinalOutOfBounds {
                final_value,
                at_least: at_least.max(highest),
                at_most,
            });
        }
    }
    if finals.windows(2).any(|pair| pair[0] != pair[1]) {
        violations.push(Violation::NodesDisagree {
            finals: finals.to_vec(),
        });
    }
    Verdict {
        acknowledged: acknowledged.len(),
        failed,
        unknown,
        violations,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An operation over [start, end] milliseconds after `zero`.
    fn op(zero: Instant, start: u64, end: u64, outcome: Outcome) -> Operation {
        Operation {
            invoked: zero + Duration::from_millis(start),
            completed: zero + Duration::from_millis(end),
            outcome,
        }
    }

    #[test]
    fn a_single_counters_history_passes() {
        let t = Instant::now();
        // Two overlapping increments may land in either order; a refused one changes nothing;
        // an unknown one may or may not have counted.
        let history = [
            op(t, 0, 10, Outcome::Ok(2)),
            op(t, 5, 12, Outcome::Ok(1)),
            op(t, 20, 30, Outcome::Ok(3)),
            op(t, 31, 40, Outcome::Failed),
            op(t, 41, 50, Outcome::Unknown),
            op(t, 60, 70, Outcome::Ok(5)),
        ];
        let verdict = check_counter(&history, &[5, 5, 5]);
        assert_eq!(verdict.violations, []);
        assert_eq!(
            (verdict.acknowledged, verdict.failed, verdict.unknown),
            (4, 1, 1)
        );
    }

    #[test]
    fn two_activations_of_one_object_are_caught() {
        let t = Instant::now();
        // Both activations start from 1: each acknowledges a 2.
        let history = [
            op(t, 0, 5, Outcome::Ok(1)),
            op(t, 10, 20, Outcome::Ok(2)),
            op(t, 11, 21, Outcome::Ok(2)),
        ];
        let verdict = check_counter(&history, &[2, 3]);
        assert!(
            verdict
                .violations
                .contains(&Violation::Duplicate { value: 2 })
        );
        assert!(
            verdict
                .violations
                .contains(&Violation::NodesDisagree { finals: vec![2, 3] })
        );
        assert!(
            verdict
                .violations
                .iter()
                .any(|v| matches!(v, Violation::FinalOutOfBounds { .. })),
            "three acknowledged, final 2"
        );
    }

    #[test]
    fn a_stale_read_after_an_acknowledgement_is_caught() {
        let t = Instant::now();
        // The second increment began after the first was acknowledged with 5, yet got 4: it ran
        // on a copy that had not seen the first.
        let history = [op(t, 0, 10, Outcome::Ok(5)), op(t, 11, 20, Outcome::Ok(4))];
        let verdict = check_counter(&history, &[5]);
        assert!(
            verdict.violations.contains(&Violation::OutOfOrder {
                earlier: 5,
                later: 4
            }),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let t = Instant::now();
        let history = [op(t, 0, 10, Outcome::Ok(1)), op(t, 20, 30, Outcome::Ok(2))];
        let verdict = check_counter(&history, &[1]);
        assert_eq!(
            verdict.violations,
            [Violation::FinalOutOfBounds {
                final_value: 1,
                at_least: 2,
                at_most: 2
            }]
        );
    }
}
