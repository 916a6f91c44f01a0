//! Transcripts: what a scripted client saw, normalised so that two implementations can be
//! compared line by line.
//!
//! A [`Transcript`] records every frame and response the scenario received. Values that differ
//! by nature between runs are replaced: random ids (UUIDs) by their order of first appearance,
//! timestamps by a marker (after checking they are milliseconds since the epoch).

use std::collections::HashMap;
use std::net::SocketAddr;

use dormouse_testing::{WsClient, http_request};

pub mod bundle;
pub mod scenarios;

/// The lines a scenario produced.
#[derive(Debug, Default)]
pub struct Transcript {
    lines: Vec<String>,
    uuids: HashMap<String, usize>,
    /// Record the reason a server answers a close with, not only its code.
    exact_close: bool,
}

impl Transcript {
    /// An empty transcript; `exact_close` records close reasons too.
    pub fn new(exact_close: bool) -> Self {
        Transcript {
            exact_close,
            ..Transcript::default()
        }
    }

    /// Records `line` after normalising it.
    pub fn push(&mut self, line: String) {
        let line = self.normalise_uuids(&line);
        self.lines.push(normalise_timestamps(&line));
    }

    /// The recorded lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Receives `count` text messages on `client` and records them under `who`.
    pub async fn recv(&mut self, who: &str, client: &mut WsClient, count: usize) {
        for _ in 0..count {
            let text = client.recv_text().await;
            self.push(format!("{who} < {text}"));
        }
        // Nothing else was sent to this client so far.
        client.expect_nothing().await;
    }

    /// Sends one HTTP request and records the status and body.
    pub async fn http(&mut self, addr: SocketAddr, method: &str, path: &str) {
        let reply = http_request(addr, method, path, &[], "").await;
        self.push(format!(
            "{method} {path} -> {} {:?}",
            reply.status, reply.body
        ));
    }

    /// Closes `client` with `code` and records the code the server answered with.
    pub async fn close(&mut self, who: &str, client: &mut WsClient, code: u16, reason: &str) {
        let answer = client.close(code, reason).await;
        let line = match answer {
            Some((code_back, reason_back)) if self.exact_close => {
                format!("{who} closed with {code}, server answered {code_back} {reason_back:?}")
            }
            answer => format!(
                "{who} closed with {code}, server answered {:?}",
                answer.map(|(code, _)| code)
            ),
        };
        self.push(line);
    }

    fn normalise_uuids(&mut self, line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some((before, uuid, after)) = find_uuid(rest) {
            out.push_str(before);
            let next = self.uuids.len();
            let n = *self.uuids.entry(uuid.to_owned()).or_insert(next);
            out.push_str(&format!("<uuid {n}>"));
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

/// Finds the first UUID (8-4-4-4-12 lowercase hex) in `text`.
fn find_uuid(text: &str) -> Option<(&str, &str, &str)> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).find_map(|start| {
        let candidate = &text.get(start..start + 36)?;
        let ok = candidate.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        });
        ok.then(|| (&text[..start], *candidate, &text[start + 36..]))
    })
}

/// Replaces `"timestamp":<ms>` by a marker, checking the value looks like `Date.now()`.
fn normalise_timestamps(line: &str) -> String {
    let Some(at) = line.find("\"timestamp\":") else {
        return line.to_owned();
    };
    let digits_start = at + "\"timestamp\":".len();
    let digits: String = line[digits_start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let value: u64 = digits.parse().unwrap_or(0);
    let marker = if value > 1_700_000_000_000 {
        "<ms>"
    } else {
        "<not a timestamp>"
    };
    format!(
        "{}{marker}{}",
        &line[..digits_start],
        &line[digits_start + digits.len()..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_timestamps_are_normalised() {
        let mut transcript = Transcript::default();
        transcript.push("from: 0b9a0a4c-6f5e-4a77-8a37-1c4f1a2b3c4d, to: x".into());
        transcript.push(
            "from: 11111111-2222-3333-4444-555555555555 and 0b9a0a4c-6f5e-4a77-8a37-1c4f1a2b3c4d"
                .into(),
        );
        transcript.push(r#"{"type":"system","text":"hi","timestamp":1795320696805}"#.into());
        assert_eq!(
            transcript.lines(),
            [
                "from: <uuid 0>, to: x",
                "from: <uuid 1> and <uuid 0>",
                r#"{"type":"system","text":"hi","timestamp":<ms>}"#,
            ]
        );
    }
}
