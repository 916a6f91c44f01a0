//! `dormouse dev` and `dormouse serve` as users meet them: reloading code with sockets open,
//! standard WebSockets, and the errors that stop startup (with the file, line and column).

use std::path::Path;
use std::process::Command;

use dormouse_testing::{TempDir, WorkersServer};

const BINARY: &str = env!("CARGO_BIN_EXE_dormouse");

/// A project written into a fresh directory.
fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("project");
    write(dir.path(), files);
    dir
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const CONFIG: &str = r#"
name = "reloaded"
main = "src/index.ts"
compatibility_date = "2026-05-01"
[[durable_objects.bindings]]
name = "ROOM"
class_name = "Room"
[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room"]
"#;

/// A room that answers every message with `PREFIX: message` and the count of its sockets.
fn room_source(prefix: &str) -> String {
    format!(
        r#"import {{ DurableObject }} from "cloudflare:workers";
export class Room extends DurableObject {{
  async fetch(request: Request): Promise<Response> {{
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, {{ status: 101, webSocket: client }});
  }}
  async webSocketMessage(ws: WebSocket, message: string) {{
    ws.send(`{prefix}: ${{message}} (${{this.ctx.getWebSockets().length}})`);
  }}
}}
export default {{
  fetch(request: Request, env: any) {{
    return env.ROOM.getByName("one").fetch(request);
  }},
}};
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reloaded_code_serves_the_next_event_and_sockets_stay_open() {
    let dir = project(&[
        ("wrangler.toml", CONFIG),
        ("src/index.ts", &room_source("v1")),
    ]);
    let mut server = WorkersServer::start(dir.path()).await;
    let mut first = server.connect("/").await;
    let mut second = server.connect("/").await;
    first.send_text("hi").await;
    assert_eq!(first.recv_text().await, "v1: hi (2)");

    write(dir.path(), &[("src/index.ts", &room_source("v2"))]);
    server.reload().await.expect("the new code loads");
    first.send_text("hi").await;
    assert_eq!(
        first.recv_text().await,
        "v2: hi (2)",
        "new code, same sockets"
    );
    second.send_text("still here").await;
    assert_eq!(second.recv_text().await, "v2: still here (2)");

    // A file that does not compile is reported; the code before keeps serving.
    write(dir.path(), &[("src/index.ts", "export const broken = ;\n")]);
    let error = server.reload().await.unwrap_err();
    assert!(error.contains("src/index.ts:1:"), "{error}");
    first.send_text("after the bad edit").await;
    assert_eq!(first.recv_text().await, "v2: after the bad edit (2)");
    // A module that throws while loading is reported too.
    write(
        dir.path(),
        &[("src/index.ts", "throw new Error('no luck');\n")],
    );
    let error = server.reload().await.unwrap_err();
    assert!(error.contains("no luck"), "{error}");
    assert!(error.contains("src/index.ts:1:"), "{error}");
    second.send_text("again").await;
    assert_eq!(second.recv_text().await, "v2: again (2)");
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_websockets_deliver_events_to_listeners_and_keep_the_object_in_memory() {
    let dir = project(&[
        ("wrangler.toml", CONFIG),
        (
            "src/index.ts",
            r#"import { DurableObject } from "cloudflare:workers";
export class Room extends DurableObject {
  connections = new Set<WebSocket>();
  async fetch(request: Request): Promise<Response> {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    this.connections.add(server);
    server.addEventListener("message", (event) => {
      for (const ws of this.connections) ws.send(`${this.connections.size}: ${event.data}`);
    });
    server.addEventListener("close", (event) => {
      this.connections.delete(server);
      for (const ws of this.connections) ws.send(`left with ${event.code}`);
    });
    return new Response(null, { status: 101, webSocket: client });
  }
}
export default { fetch(request: Request, env: any) { return env.ROOM.getByName("one").fetch(request); } };
"#,
        ),
    ]);
    let server = WorkersServer::start(dir.path()).await;
    let mut a = server.connect("/").await;
    let mut b = server.connect("/").await;
    a.send_text("hello").await;
    assert_eq!(a.recv_text().await, "2: hello");
    assert_eq!(b.recv_text().await, "2: hello");
    let id = server
        .runtime()
        .env()
        .durable_object("ROOM")
        .unwrap()
        .id_from_name("one")
        .unwrap();
    let refused = server
        .runtime()
        .hibernate_now("ROOM", &id)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("standard"), "{refused}");
    b.close(4001, "bye").await;
    assert_eq!(a.recv_text().await, "left with 4001");
}

/// Runs `dormouse serve` on `project` and returns its exit status and what it printed.
fn serve(project: &Path) -> (bool, String) {
    let data = TempDir::new("data");
    let output = Command::new(BINARY)
        .arg("serve")
        .arg(project)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .expect("run dormouse");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn syntax_errors_stop_startup_with_file_line_and_column() {
    let dir = project(&[
        ("wrangler.toml", CONFIG),
        (
            "src/index.ts",
            "import { helper } from './helper';\nexport default { fetch() { return helper(); } };\n",
        ),
        (
            "src/helper.ts",
            "export function helper(): Response {\n  return new Response(\"x\";\n}\n",
        ),
    ]);
    let (ok, stderr) = serve(dir.path());
    assert!(!ok);
    assert!(stderr.contains("src/helper.ts:2:"), "{stderr}");
}

#[test]
fn missing_modules_exports_and_node_modules_stop_startup_naming_them() {
    let dir = project(&[
        ("wrangler.toml", CONFIG),
        (
            "src/index.ts",
            "import { x } from './nowhere';\nexport default { fetch() { return new Response(x); } };\n",
        ),
    ]);
    let (ok, stderr) = serve(dir.path());
    assert!(!ok);
    assert!(stderr.contains("./nowhere"), "{stderr}");
    assert!(stderr.contains("src/index.ts"), "{stderr}");

    let dir = project(&[
        ("wrangler.toml", CONFIG),
        (
            "src/index.ts",
            "export default { fetch() { return new Response('no Room class'); } };\n",
        ),
    ]);
    let (ok, stderr) = serve(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("`ROOM`") && stderr.contains("`Room`"),
        "{stderr}"
    );

    let dir = project(&[
        (
            "wrangler.toml",
            &CONFIG.replace(
                "2026-05-01\"",
                "2026-05-01\"\ncompatibility_flags = [\"nodejs_compat\"]",
            ),
        ),
        (
            "src/index.ts",
            "import { readFileSync } from 'node:fs';\nexport class Room {}\nexport default { fetch() { return new Response(String(readFileSync)); } };\n",
        ),
    ]);
    let (ok, stderr) = serve(dir.path());
    assert!(!ok);
    assert!(stderr.contains("node:fs"), "{stderr}");
}

#[test]
fn unsupported_bindings_stop_startup_naming_the_key() {
    let dir = project(&[
        (
            "wrangler.toml",
            &format!("{CONFIG}\n[[kv_namespaces]]\nbinding = \"CACHE\"\nid = \"abc\"\n"),
        ),
        (
            "src/index.ts",
            "export class Room {}\nexport default { fetch() { return new Response('x'); } };\n",
        ),
    ]);
    let (ok, stderr) = serve(dir.path());
    assert!(!ok);
    assert!(stderr.contains("kv_namespaces"), "{stderr}");
}

#[test]
fn help_explains_the_commands() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("dev") && text.contains("serve"), "{text}");
    let help = Command::new(BINARY)
        .args(["dev", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--admin-listen",
        "--hibernate-after",
        "--data-dir",
        "--durability",
        "--env",
        "--cpu-limit",
        "--memory-limit",
    ] {
        assert!(
            text.contains(flag),
            "{flag} missing from dev --help:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uncaught_errors_are_logged_once_at_their_typescript_lines() {
    let dir = project(&[
        ("wrangler.toml", CONFIG),
        (
            "src/index.ts",
            r#"import { DurableObject } from "cloudflare:workers";
type Reply = { status: number };
export class Room extends DurableObject {
  async fetch(request: Request): Promise<Response> {
    const path: string = new URL(request.url).pathname;
    if (path === "/unawaited") {
      Promise.reject(new Error("nobody waits for this"));
      return new Response("ok");
    }
    const reply: Reply = { status: 0 };
    throw new Error(`thrown from fetch ${reply.status}`);
  }
}
export default { fetch(request: Request, env: any) { return env.ROOM.getByName("one").fetch(request); } };
"#,
        ),
    ]);
    let (data_dir, data) = dormouse_testing::process_data_dir("uncaught");
    let log = data_dir.path().join("server.log");
    let options = dormouse_testing::ProcessOptions {
        leading_args: vec!["serve".into(), dir.path().display().to_string()],
        log: Some(log.clone()),
        log_filter: Some("error".into()),
        ..Default::default()
    };
    let server = dormouse_testing::ServerProcess::start(Path::new(BINARY), &data, &options).await;
    let thrown = dormouse_testing::http_request(server.addr(), "GET", "/thrown", &[], "").await;
    assert_eq!(thrown.status, 500, "{}", thrown.body);
    let unawaited =
        dormouse_testing::http_request(server.addr(), "GET", "/unawaited", &[], "").await;
    assert_eq!(unawaited.status, 200, "{}", unawaited.body);
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    let count = |needle: &str| text.matches(needle).count();
    // Once where it was thrown; once more in the Worker, which awaited the stub and did not
    // catch: the same error, with its name and message.
    assert_eq!(
        count("Uncaught exception in fetch: Error: thrown from fetch 0"),
        1,
        "{text}"
    );
    assert_eq!(
        count("Uncaught exception in the Worker's fetch: Error: thrown from fetch 0"),
        1,
        "{text}"
    );
    assert_eq!(count("Error: Error"), 0, "{text}");
    assert_eq!(
        count("Uncaught (in promise) Error: thrown"),
        0,
        "handled by the runtime:\n{text}"
    );
    // The position is the TypeScript source's (line 11), not the stripped output's.
    assert!(text.contains("src/index.ts:11:"), "{text}");
    assert_eq!(
        count("Uncaught (in promise) Error: nobody waits for this"),
        1,
        "{text}"
    );
}
