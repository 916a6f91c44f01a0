//! The results table: one row per figure, one column per peer, Dormouse's advantage over each
//! peer (and Workers mode's over workerd), and the targets the project set.

use std::fmt::Write as _;

use super::servers::Peer;

/// How a figure is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Bytes, written in KB.
    Bytes,
    /// A plain number with two decimals.
    Ratio,
    /// Events per second.
    PerSecond,
    /// A whole number.
    Count,
    /// Seconds, written in µs or ms.
    Seconds,
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// What a row's figure must reach.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// At most this value.
    AtMost(f64),
    /// At least this value.
    AtLeast(f64),
    /// This value, within 5%.
    About(f64),
    /// This multiple of the raw baseline's figure: at least it when higher is better, at most
    /// when lower is.
    TimesRaw(f64),
    /// This multiple of workerd's figure, in the same sense.
    TimesWorkerd(f64),
}

/// A goal for one peer's figure (Dormouse's, or Workers mode's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) who: Peer,
    pub(crate) goal: Goal,
}

impl Target {
    /// A goal for Dormouse (the Rust examples).
    pub(crate) fn dormouse(goal: Goal) -> Target {
        Target {
            who: Peer::Dormouse,
            goal,
        }
    }

    /// A goal for Workers mode (the seed programs in JavaScript).
    pub(crate) fn workers(goal: Goal) -> Target {
        Target {
            who: Peer::Workers,
            goal,
        }
    }
}

/// One figure for every peer.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) metric: String,
    pub(crate) unit: Unit,
    pub(crate) better: Better,
    /// By peer, in [`Peer::ALL`] order; `None` where the peer was not run or cannot run it.
    pub(crate) values: [Option<f64>; PEERS],
    pub(crate) targets: Vec<Target>,
}

/// How many peers there are (columns of figures).
pub(crate) const PEERS: usize = Peer::ALL.len();

impl Row {
    pub(crate) fn new(scenario: &str, metric: &str, unit: Unit, better: Better) -> Row {
        Row {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            unit,
            better,
            values: [None; PEERS],
            targets: Vec::new(),
        }
    }

    pub(crate) fn with_target(mut self, target: Target) -> Row {
        self.targets.push(target);
        self
    }

    pub(crate) fn set(&mut self, peer: Peer, value: f64) {
        self.values[peer as usize] = Some(value);
    }

    pub(crate) fn get(&self, peer: Peer) -> Option<f64> {
        self.values[peer as usize]
    }

    /// How many times better `ours` does than `peer` (above 1: better).
    fn advantage_of(&self, ours: Peer, peer: Peer) -> Option<f64> {
        let (ours, theirs) = (self.get(ours)?, self.get(peer)?);
        let ratio = match self.better {
            Better::Higher => ours / theirs,
            Better::Lower => theirs / ours,
        };
        ratio.is_finite().then_some(ratio)
    }

    /// How many times better Dormouse does than `peer`.
    fn advantage(&self, peer: Peer) -> Option<f64> {
        self.advantage_of(Peer::Dormouse, peer)
    }

    /// Whether `target` is reached; `None` without the figures it needs.
    fn reached(&self, target: &Target) -> Option<bool> {
        let ours = self.get(target.who)?;
        let times = |peer: Peer, factor: f64| -> Option<bool> {
            let theirs = self.get(peer)?;
            Some(match self.better {
                Better::Higher => ours >= factor * theirs,
                Better::Lower => ours <= factor * theirs,
            })
        };
        match target.goal {
            Goal::AtMost(limit) => Some(ours <= limit),
            Goal::AtLeast(floor) => Some(ours >= floor),
            Goal::About(value) => Some((ours - value).abs() <= value * 0.05),
            Goal::TimesRaw(factor) => times(Peer::Raw, factor),
            Goal::TimesWorkerd(factor) => times(Peer::Workerd, factor),
        }
    }

    /// Whether every target with its figures is reached (`None` when none can be judged).
    #[cfg(test)]
    fn met(&self) -> Option<bool> {
        let judged: Vec<bool> = self
            .targets
            .iter()
            .filter_map(|t| self.reached(t))
            .collect();
        (!judged.is_empty()).then(|| judged.iter().all(|ok| *ok))
    }

    fn target_text(&self) -> String {
        let texts: Vec<String> = self
            .targets
            .iter()
            .map(|target| {
                let sense = match self.better {
                    Better::Higher => "≥",
                    Better::Lower => "≤",
                };
                let who = match target.who {
                    Peer::Workers => "JS ",
                    _ => "",
                };
                let text = match target.goal {
                    Goal::AtMost(limit) => format!("{who}≤ {}", format_value(limit, self.unit)),
                    Goal::AtLeast(floor) => format!("{who}≥ {}", format_value(floor, self.unit)),
                    Goal::About(value) => format!("{who}= {}", format_value(value, self.unit)),
                    Goal::TimesRaw(times) => format!("{who}{sense} {times}× raw"),
                    Goal::TimesWorkerd(times) => format!("{who}{sense} {times}× workerd"),
                };
                match self.reached(target) {
                    Some(true) => format!("{text} ✓"),
                    Some(false) => format!("{text} ✗"),
                    None => text,
                }
            })
            .collect();
        texts.join("; ")
    }
}

/// Writes `value` in `unit`.
pub(crate) fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes if value >= 10_000.0 => format!("{:.0} KB", value / 1000.0),
        Unit::Bytes => format!("{:.2} KB", value / 1000.0),
        Unit::Ratio => format!("{value:.2}"),
        Unit::PerSecond => format!("{}/s", thousands(value.round() as u64)),
        Unit::Count => thousands(value.round() as u64),
        Unit::Seconds if value < 1e-5 => format!("{:.1} µs", value * 1e6),
        Unit::Seconds if value < 1e-3 => format!("{:.0} µs", value * 1e6),
        Unit::Seconds if value < 1.0 => format!("{:.2} ms", value * 1e3),
        Unit::Seconds => format!("{value:.1} s"),
    }
}

/// `n` with thousands separators.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table in Markdown.
pub(crate) fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Scenario | Figure | Dormouse | raw baseline | workerd | Dormouse JS | Dormouse vs raw | Dormouse vs workerd | JS vs workerd | Target |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|");
    let mut previous = "";
    for row in rows {
        let scenario = if row.scenario == previous {
            ""
        } else {
            &row.scenario
        };
        previous = &row.scenario;
        let cell = |peer: Peer| {
            row.get(peer)
                .map_or_else(|| "—".to_owned(), |v| format_value(v, row.unit))
        };
        let ratio = |peer: Peer| {
            row.advantage(peer)
                .map_or_else(String::new, |r| format!("{r:.2}×"))
        };
        let js_ratio = row
            .advantage_of(Peer::Workers, Peer::Workerd)
            .map_or_else(String::new, |r| format!("{r:.2}×"));
        let _ = writeln!(
            out,
            "| {scenario} | {} | {} | {} | {} | {} | {} | {} | {js_ratio} | {} |",
            row.metric,
            cell(Peer::Dormouse),
            cell(Peer::Raw),
            cell(Peer::Workerd),
            cell(Peer::Workers),
            ratio(Peer::Raw),
            ratio(Peer::Workerd),
            row.target_text()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advantage_and_targets_follow_the_better_direction() {
        let mut memory = Row::new("idle", "RSS per connection", Unit::Bytes, Better::Lower)
            .with_target(Target::dormouse(Goal::AtMost(2000.0)));
        memory.set(Peer::Dormouse, 1000.0);
        memory.set(Peer::Workerd, 69_000.0);
        assert_eq!(memory.advantage(Peer::Workerd), Some(69.0));
        assert_eq!(memory.met(), Some(true));
        let mut echo = Row::new("echo", "round trips", Unit::PerSecond, Better::Higher)
            .with_target(Target::dormouse(Goal::TimesRaw(0.9)));
        echo.set(Peer::Dormouse, 80.0);
        echo.set(Peer::Raw, 100.0);
        assert_eq!(echo.met(), Some(false));
        let mut cost = Row::new("echo", "CPU per round trip", Unit::Seconds, Better::Lower)
            .with_target(Target::workers(Goal::TimesWorkerd(0.25)));
        cost.set(Peer::Workerd, 80.0);
        cost.set(Peer::Workers, 16.0);
        assert_eq!(cost.met(), Some(true));
        assert_eq!(cost.advantage_of(Peer::Workers, Peer::Workerd), Some(5.0));
        let table = render(&[memory, echo, cost]);
        assert!(table.contains("| 1.00 KB | — | 69 KB | — |"), "{table}");
        assert!(table.contains("≥ 0.9× raw ✗"), "{table}");
        assert!(table.contains("JS ≤ 0.25× workerd ✓"), "{table}");
        assert_eq!(format_value(1_234_567.0, Unit::PerSecond), "1,234,567/s");
        assert_eq!(format_value(0.000_085, Unit::Seconds), "85 µs");
    }
}

/// CPU used during a measured stretch, in cores: who was the bottleneck.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    pub(crate) server: f64,
    pub(crate) generator: f64,
}

/// CPU use of each peer's run of one scenario.
#[derive(Debug, Clone)]
pub(crate) struct CpuRow {
    pub(crate) scenario: String,
    pub(crate) values: [Option<Cpu>; PEERS],
}

/// The CPU table in Markdown.
pub(crate) fn render_cpu(rows: &[CpuRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Scenario | Dormouse server / generator | raw baseline server / generator | workerd server / generator | Dormouse JS server / generator |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for row in rows {
        let cells: Vec<String> = row
            .values
            .iter()
            .map(|cpu| {
                cpu.map_or_else(
                    || "—".to_owned(),
                    |c| format!("{:.2} / {:.2}", c.server, c.generator),
                )
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", row.scenario, cells.join(" | "));
    }
    out
}
