//! The chat page in headless Chromium, talking to a WebSocket client in the same room.

use dormouse_testing::{Browser, TestServer};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn chatting_from_the_web_page() {
    let server = TestServer::start(chat_room::app()).await;
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.navigate(&format!("http://{}/", server.addr())).await;

    // Join from the page.
    page.eval("document.getElementById('room').value = 'browser'; document.getElementById('username').value = 'alice'; document.getElementById('join').click()").await;
    page.wait_for("document.getElementById('status').textContent === 'connected to browser'")
        .await;
    page.wait_for("document.getElementById('messages').innerText.includes('Welcome to the chat room! 1 user(s) online.')").await;

    // Bob joins with a plain client; the page shows it.
    let mut bob = server.connect("/room/browser?userId=b&username=bob").await;
    let welcome: Value = serde_json::from_str(&bob.recv_text().await).unwrap();
    assert_eq!(
        welcome["text"],
        "Welcome to the chat room! 2 user(s) online."
    );
    page.wait_for("document.getElementById('messages').innerText.includes('bob joined the room')")
        .await;

    // Alice types and sends; bob sees the typing indicator's message and the chat.
    page.eval("const m = document.getElementById('message'); m.value = 'hello from the browser'; m.dispatchEvent(new Event('input')); document.getElementById('send').click()").await;
    let typing: Value = serde_json::from_str(&bob.recv_text().await).unwrap();
    assert_eq!(
        typing,
        json!({"type": "typing", "userId": typing["userId"], "username": "alice"})
    );
    let chat: Value = serde_json::from_str(&bob.recv_text().await).unwrap();
    assert_eq!(
        (
            chat["type"].as_str(),
            chat["username"].as_str(),
            chat["text"].as_str()
        ),
        (Some("chat"), Some("alice"), Some("hello from the browser"))
    );
    page.wait_for(
        "document.getElementById('messages').innerText.includes('alice: hello from the browser')",
    )
    .await;

    // Across a hibernation of the room, bob types and talks back.
    server.hibernate(chat_room::BINDING, "browser").await;
    bob.send_text(r#"{"type":"typing"}"#).await;
    page.wait_for("document.getElementById('typing').textContent === 'bob is typing…'")
        .await;
    bob.send_text(r#"{"type":"chat","text":"hi alice"}"#).await;
    page.wait_for("document.getElementById('messages').innerText.includes('bob: hi alice')")
        .await;
    page.wait_for("document.getElementById('typing').textContent === ''")
        .await;

    // Bob leaves.
    bob.close(1000, "bye").await;
    page.wait_for("document.getElementById('messages').innerText.includes('bob left the room')")
        .await;

    let screenshot = page.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG"));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-room-page.png");
    std::fs::write(&path, screenshot).unwrap();
    eprintln!("screenshot: {}", path.display());
}
