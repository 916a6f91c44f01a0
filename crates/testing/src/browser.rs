//! Headless Chromium driven over the Chrome DevTools Protocol, for tests of web pages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{DEADLINE, TempDir, http_request};

/// A headless Chromium process; killed when dropped.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Browser {
    /// The Chromium binary: `$CHROMIUM`, else `/usr/bin/chromium` (Debian's `chromium` package).
    pub fn binary() -> PathBuf {
        std::env::var_os("CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
    }

    /// Starts Chromium headless with a fresh profile, with no network access beyond loopback use.
    pub async fn launch() -> Browser {
        let binary = Browser::binary();
        assert!(
            binary.exists(),
            "Chromium is not installed at {}: run scripts/test, `apt-get install chromium`, or set CHROMIUM",
            binary.display()
        );
        let profile = TempDir::new("chromium");
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Chromium writes the port it chose into the profile once DevTools listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let port = tokio::time::timeout(DEADLINE * 3, async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&port_file)
                    && let Some(port) = text.lines().next().and_then(|l| l.parse().ok())
                {
                    return port;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("Chromium started its DevTools endpoint");
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// The first page (the `about:blank` tab it started with).
    pub async fn page(&self) -> Page {
        let addr = ([127, 0, 0, 1], self.port).into();
        let listing = http_request(addr, "GET", "/json/list", &[], "").await;
        let targets: Value = serde_json::from_str(&listing.body).expect("DevTools target list");
        let url = targets
            .as_array()
            .and_then(|targets| targets.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to the page");
        Page { socket, next_id: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser tab.
#[derive(Debug)]
pub struct Page {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Sends a DevTools command and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.request(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// Sends a DevTools command: its result, or the error DevTools answered with.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::text(command))
            .await
            .expect("send DevTools command");
        let answer = async {
            while let Some(message) = self.socket.next().await {
                let Ok(Message::Text(text)) = message else {
                    continue;
                };
                let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
                if reply["id"] == id {
                    return reply;
                }
            }
            panic!("DevTools connection closed")
        };
        let mut reply = tokio::time::timeout(DEADLINE, answer)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer"));
        match reply.get_mut("error") {
            Some(error) => Err(error.take()),
            None => Ok(reply["result"].take()),
        }
    }

    /// Loads `url` and waits until its document is ready.
    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete' && location.href.startsWith('http')")
            .await;
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true in the page. A page that is
    /// navigating (a reload, a form sent) cannot answer yet: that is asked again, while an
    /// exception thrown by the condition fails at once.
    pub async fn wait_for(&mut self, condition: &str) {
        let expression = format!("!!({condition})");
        let wait = async {
            loop {
                let params = json!({ "expression": expression, "returnByValue": true });
                if let Ok(result) = self.request("Runtime.evaluate", params).await {
                    assert!(
                        result.get("exceptionDetails").is_none(),
                        "{condition}: {}",
                        result["exceptionDetails"]
                    );
                    if result["result"]["value"] == Value::Bool(true) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(DEADLINE, wait).await.is_err() {
            let body = self.eval("document.body.innerText").await;
            panic!("the page never satisfied `{condition}`; it shows: {body}");
        }
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let result = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        BASE64
            .decode(result["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot")
    }
}
