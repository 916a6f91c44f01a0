//! Other WebSocket client libraries, run as processes: Python's `websockets` and Node's `ws`, as
//! `scripts/install-clients` installs them.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::DEADLINE;

/// Where `scripts/install-clients` put the client libraries: `$DORMOUSE_CLIENTS`, else
/// `~/.cache/dormouse-clients` (or under `$XDG_CACHE_HOME`).
pub fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DORMOUSE_CLIENTS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
        PathBuf::from,
    );
    cache.join("dormouse-clients")
}

/// Runs `script` with Python's `websockets` and `args`; returns its standard output.
pub async fn run_python_client(script: &Path, args: &[&str]) -> String {
    let python = clients_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-clients",
        python.display()
    );
    run(Command::new(python).arg(script).args(args)).await
}

/// Runs `script` (CommonJS) with Node's `ws` and `args`; returns its standard output.
pub async fn run_node_client(script: &Path, args: &[&str]) -> String {
    let modules = clients_dir().join("node_modules");
    assert!(
        modules.join("ws").exists(),
        "{} is missing: run scripts/install-clients",
        modules.join("ws").display()
    );
    run(Command::new("node")
        .env("NODE_PATH", modules)
        .arg(script)
        .args(args))
    .await
}

async fn run(command: &mut Command) -> String {
    let output = tokio::time::timeout(DEADLINE, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{command:?}: no answer within {DEADLINE:?}"))
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
