//! The client registry against a real server: no in-memory map, only tags.

use dormouse_testing::TestServer;
use serde_json::{Value, json};

async fn recv(client: &mut dormouse_testing::WsClient) -> Value {
    serde_json::from_str(&client.recv_text().await).unwrap()
}

#[tokio::test]
async fn broadcast_direct_messages_and_forgetting_across_hibernation() {
    let server = TestServer::start(client_registry::app()).await;
    let mut one = server.connect("/websocket").await;
    let welcome = recv(&mut one).await;
    let id_one = welcome["clientId"].as_str().unwrap().to_owned();
    assert_eq!(
        welcome,
        json!({"type": "welcome", "clientId": id_one, "connections": 1})
    );
    let mut two = server.connect("/websocket").await;
    let id_two = recv(&mut two).await["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        recv(&mut one).await,
        json!({"type": "joined", "clientId": id_two, "connections": 2})
    );

    server.hibernate(client_registry::BINDING, "registry").await;
    one.send_text("hello all").await;
    let line = format!("[Durable Object] message: hello all, from: {id_one}, connections: 2");
    assert_eq!(one.recv_text().await, line);
    assert_eq!(two.recv_text().await, line);

    one.send_text(&json!({"to": id_two, "text": "psst"}).to_string())
        .await;
    assert_eq!(
        recv(&mut two).await,
        json!({"type": "direct", "from": id_one, "text": "psst"})
    );
    one.expect_nothing().await;

    let clients: Value =
        serde_json::from_str(&server.request("GET", "/clients", &[]).await.body).unwrap();
    assert_eq!(clients, json!({"clients": [id_one, id_two]}));

    server.hibernate(client_registry::BINDING, "registry").await;
    two.drop_connection().await;
    assert_eq!(
        recv(&mut one).await,
        json!({"type": "left", "clientId": id_two, "connections": 1})
    );
    let clients: Value =
        serde_json::from_str(&server.request("GET", "/clients", &[]).await.body).unwrap();
    assert_eq!(clients, json!({"clients": [id_one]}));
}
