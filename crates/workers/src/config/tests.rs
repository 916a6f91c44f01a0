use std::path::{Path, PathBuf};

use super::*;

/// The seed projects, verbatim copies of the ones the project started from.
fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../seeds/workers")
        .join(name)
}

/// A project directory with the given files, removed when dropped.
struct Project(PathBuf);

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dormouse-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Project(dir)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_seed_project_is_read() {
    let chat = WorkerConfig::load(&seed("seed000-chat-room"), None).unwrap();
    assert_eq!(chat.name.as_deref(), Some("chat-room"));
    assert!(chat.main.ends_with("src/index.ts"));
    assert_eq!(
        chat.bindings,
        [DurableObjectBinding {
            name: "CHAT_ROOM".into(),
            class_name: "ChatRoom".into()
        }]
    );
    assert_eq!(chat.backend("ChatRoom"), StorageBackend::Sqlite);
    assert!(!chat.compatibility.enabled(Feature::AutoReplyToClose));
    assert!(chat.warnings.is_empty(), "{:?}", chat.warnings);

    let jsonc = WorkerConfig::load(&seed("seed001-hibernation-server"), None).unwrap();
    assert_eq!(jsonc.bindings[0].name, "WEBSOCKET_HIBERNATION_SERVER");

    let echo_js = WorkerConfig::load(&seed("seed002-echo-js"), None).unwrap();
    assert!(echo_js.main.ends_with("src/index.js"));
    assert_eq!(
        echo_js.backend("WebSocketHibernationServer"),
        StorageBackend::KeyValue
    );

    let registry = WorkerConfig::load(&seed("seed004-client-registry"), None).unwrap();
    assert!(registry.tsconfig.is_some());
}

#[test]
fn main_defaults_to_src_index_ts_then_js() {
    let ts = Project::new(&[
        ("wrangler.toml", "name = \"x\"\n"),
        ("src/index.ts", ""),
        ("src/index.js", ""),
    ]);
    assert!(
        WorkerConfig::load(&ts.0, None)
            .unwrap()
            .main
            .ends_with("src/index.ts")
    );
    let js = Project::new(&[("wrangler.toml", "name = \"x\"\n"), ("src/index.js", "")]);
    assert!(
        WorkerConfig::load(&js.0, None)
            .unwrap()
            .main
            .ends_with("src/index.js")
    );
    let none = Project::new(&[("wrangler.toml", "name = \"x\"\n")]);
    let error = WorkerConfig::load(&none.0, None).unwrap_err().to_string();
    assert!(error.contains("src/index.ts"), "{error}");
}

#[test]
fn environments_override_and_do_not_inherit_bindings_or_vars() {
    let project = Project::new(&[
        (
            "wrangler.toml",
            r#"
name = "app"
main = "src/index.ts"
compatibility_date = "2025-09-01"
[vars]
MODE = "dev"
LIMIT = 5
[[durable_objects.bindings]]
name = "ROOMS"
class_name = "Room"
[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room"]
[env.production]
compatibility_date = "2026-05-01"
[env.production.vars]
MODE = "prod"
[[env.production.durable_objects.bindings]]
name = "ROOMS"
class_name = "Room"
"#,
        ),
        ("src/index.ts", ""),
        (".dev.vars", "SECRET=s3cret\nMODE=overridden\n"),
    ]);
    let base = WorkerConfig::load(&project.0, None).unwrap();
    assert_eq!(
        base.vars,
        [
            ("LIMIT".into(), Var::Json(serde_json::json!(5))),
            ("SECRET".into(), Var::Text("s3cret".into())),
            ("MODE".into(), Var::Text("overridden".into())),
        ]
    );
    let production = WorkerConfig::load(&project.0, Some("production")).unwrap();
    assert!(production.main.ends_with("src/index.ts"));
    assert_eq!(production.migrations.len(), 1);
    assert!(production.compatibility.enabled(Feature::AutoReplyToClose));
    assert!(production.vars.iter().all(|(name, _)| name != "LIMIT"));
    let error = WorkerConfig::load(&project.0, Some("staging"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("[env.staging]"), "{error}");
}

#[test]
fn unsupported_bindings_stop_startup_naming_the_key() {
    let project = Project::new(&[
        (
            "wrangler.jsonc",
            r#"{ "main": "index.js", "kv_namespaces": [{ "binding": "KV", "id": "x" }] }"#,
        ),
        ("index.js", ""),
    ]);
    let error = WorkerConfig::load(&project.0, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("kv_namespaces"), "{error}");
    assert!(error.contains("wrangler.jsonc"), "{error}");
}

#[test]
fn harmless_keys_are_accepted_and_others_warned_about() {
    let project = Project::new(&[
        (
            "wrangler.jsonc",
            r#"{
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "x", "main": "index.js", "account_id": "abc", "workers_dev": true,
  "observability": { "enabled": true },
  "kv_namespaces": [],
  "triggers": { "crons": ["* * * * *"] },
  "compatibility_flags": ["nodejs_compat", "some_future_flag"],
  "mystery": 1,
}"#,
        ),
        ("index.js", ""),
    ]);
    let config = WorkerConfig::load(&project.0, None).unwrap();
    assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);
    assert!(config.warnings.iter().any(|w| w.contains("triggers")));
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("some_future_flag"))
    );
    assert!(config.warnings.iter().any(|w| w.contains("mystery")));
    assert!(config.compatibility.enabled(Feature::NodeCompat));
}

#[test]
fn bad_values_are_reported_with_the_file() {
    let project = Project::new(&[
        (
            "wrangler.toml",
            "main = \"index.js\"\ncompatibility_date = \"soon\"\n",
        ),
        ("index.js", ""),
    ]);
    let error = WorkerConfig::load(&project.0, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("compatibility_date"), "{error}");
    let project = Project::new(&[
        (
            "wrangler.toml",
            "main = \"index.js\"\n[[migrations]]\ntag = \"v1\"\nnew_clases = [\"A\"]\n",
        ),
        ("index.js", ""),
    ]);
    let error = WorkerConfig::load(&project.0, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("new_clases"), "{error}");
    let project = Project::new(&[
        (
            "wrangler.toml",
            "main = \"index.js\"\n[[durable_objects.bindings]]\nname = \"A\"\nclass_name = \"A\"\nscript_name = \"other\"\n",
        ),
        ("index.js", ""),
    ]);
    let error = WorkerConfig::load(&project.0, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("another Worker"), "{error}");
}

#[test]
fn renamed_classes_keep_their_backend() {
    let project = Project::new(&[
        (
            "wrangler.toml",
            r#"
main = "index.js"
[[migrations]]
tag = "v1"
new_classes = ["Old"]
[[migrations]]
tag = "v2"
renamed_classes = [{ from = "Old", to = "New" }]
"#,
        ),
        ("index.js", ""),
    ]);
    let config = WorkerConfig::load(&project.0, None).unwrap();
    assert_eq!(config.backend("New"), StorageBackend::KeyValue);
    assert_eq!(config.backend("Unlisted"), StorageBackend::Sqlite);
}

#[test]
fn the_seed_copies_are_verbatim() {
    // The seeds this project started from sit beside the repository on the machines where it
    // is developed; when they do, the copies here must be the same bytes.
    let originals = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/workers");
    if !originals.is_dir() {
        return;
    }
    for project in [
        "seed000-chat-room",
        "seed001-hibernation-server",
        "seed002-echo-js",
        "seed002-echo-ts",
        "seed004-client-registry",
    ] {
        compare_dirs(&originals.join(project), &seed(project));
    }
}

fn compare_dirs(original: &Path, copy: &Path) {
    for entry in std::fs::read_dir(original).unwrap() {
        let entry = entry.unwrap();
        let copied = copy.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            compare_dirs(&entry.path(), &copied);
        } else {
            assert_eq!(
                std::fs::read(entry.path()).unwrap(),
                std::fs::read(&copied).unwrap(),
                "{} differs from its original",
                copied.display()
            );
        }
    }
}
