//! The inspector page in headless Chromium: its counts move, an object's page shows its socket's
//! tags and attachment (a hostile one as text), a value the object stored and its live log, and
//! "Hibernate now" works. Off loopback, the page shows nothing before it is given its token.

mod common;

use common::PROBE;
use dormouse_testing::{Browser, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_an_object_and_hibernates_it() {
    let server = TestServer::start(common::app()).await;
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.navigate(&format!("http://{}/", server.admin_addr()))
        .await;
    let websockets = format!(
        "document.querySelector('#namespaces tr[data-binding=\"{PROBE}\"] td.websockets')?.textContent"
    );
    page.wait_for(&format!("{websockets} === '0'")).await;

    // An attachment that would run script if it were put in the page as markup.
    let mut client = server
        .connect("/probe/on-the-page?tags=room:1,user:mallory&attach=%3Cimg%20src=x%20onerror=%22window.pwned=1%22%3E")
        .await;
    client.send_text("my-id").await;
    let socket = client.recv_text().await;
    client.send_text("put greeting <b>hello</b>").await;
    assert_eq!(client.recv_text().await, "stored");
    page.wait_for(&format!("{websockets} === '1'")).await;
    let row = "document.querySelector('#objects tr[data-name=\"on-the-page\"]')";
    page.wait_for(&format!("{row}?.textContent.includes('active')"))
        .await;

    page.eval(&format!("{row}.click()")).await;
    page.wait_for("document.querySelector('#sockets tbody tr .attachment pre')")
        .await;
    let tags = page
        .eval("document.querySelector('#sockets tbody tr .tags').textContent")
        .await;
    assert_eq!(tags, "room:1user:mallory");
    let attachment = page
        .eval("document.querySelector('#sockets tbody tr .attachment pre').textContent")
        .await;
    assert!(
        attachment.as_str().unwrap().contains("<img src=x onerror="),
        "{attachment}"
    );
    assert_eq!(
        page.eval("document.querySelector('#object img') === null && window.pwned === undefined")
            .await,
        true,
        "the attachment stayed text"
    );
    page.wait_for("document.querySelector('#kv tr[data-key=\"greeting\"] .value')?.textContent === '\"<b>hello</b>\"'")
        .await;
    assert_eq!(
        page.eval("document.querySelector('#kv b') === null").await,
        true,
        "the value stayed text"
    );

    // The live log shows what happens from now on.
    page.wait_for("document.querySelector('#log-state').textContent.startsWith('live')")
        .await;
    client.send_text("echo seen on the page").await;
    client.recv_text().await;
    page.wait_for(&format!(
        "document.querySelector('#log tbody tr.websocket_message')?.textContent.includes('socket {socket}: text, 21 bytes')"
    ))
    .await;
    if let Some(path) = std::env::var_os("DORMOUSE_INSPECTOR_SCREENSHOT") {
        std::fs::write(path, page.screenshot().await).unwrap();
    }

    page.eval("document.querySelector('#hibernate').click()")
        .await;
    page.wait_for("document.querySelector('#object-state')?.textContent === 'hibernated'")
        .await;
    page.wait_for(
        "document.querySelector('#log tbody tr.hibernated')?.textContent.includes('on request')",
    )
    .await;
    page.eval("location.hash = '#/'").await;
    let hibernated = format!(
        "document.querySelector('#namespaces tr[data-binding=\"{PROBE}\"] td.hibernated')?.textContent"
    );
    page.wait_for(&format!("{hibernated} === '1'")).await;
    // The socket stayed open through it all.
    client.send_text("tags").await;
    assert_eq!(client.recv_text().await, "room:1,user:mallory");
}

#[tokio::test(flavor = "multi_thread")]
async fn off_loopback_the_page_asks_for_its_token_once() {
    // Characters a cookie cannot hold as they are: the page encodes them, the server decodes.
    let token = "s3cr+t/=";
    let server = TestServer::start_with(common::app(), |args| {
        args.admin_listen = "0.0.0.0:0".parse().unwrap();
        args.admin_token = Some(token.into());
    })
    .await;
    let port = server.admin_addr().port();
    let browser = Browser::launch().await;
    let mut page = browser.page().await;
    page.navigate(&format!("http://127.0.0.1:{port}/")).await;
    page.wait_for("document.querySelector('#login') !== null")
        .await;
    assert_eq!(
        page.eval("document.querySelector('#namespaces') === null")
            .await,
        true,
        "nothing of the inspector before the token"
    );

    // Submitting reloads the page, so the form is submitted after the evaluation returns; the
    // mark tells the reloaded page from the old one.
    let submit = |guess: &str| {
        format!(
            "window.beforeReload = true; setTimeout(() => {{ document.querySelector('#token').value = {guess:?}; document.querySelector('#login').requestSubmit(); }}, 0)"
        )
    };
    page.eval(&submit("wrong")).await;
    page.wait_for("window.beforeReload === undefined && document.querySelector('#login') !== null")
        .await;
    page.eval(&submit(token)).await;
    page.wait_for(&format!(
        "document.querySelector('#namespaces tr[data-binding=\"{PROBE}\"]') !== null"
    ))
    .await;
    // The feed and the API answer the page, through the cookie it set.
    page.wait_for("document.querySelector('#feed').textContent === 'live'")
        .await;
}
