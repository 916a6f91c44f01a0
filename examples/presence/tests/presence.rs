//! The presence example against a real server.

use dormouse_testing::TestServer;
use serde_json::{Value, json};

async fn recv(client: &mut dormouse_testing::WsClient) -> Value {
    serde_json::from_str(&client.recv_text().await).unwrap()
}

#[tokio::test]
async fn presence_list_updates_and_leaves_across_hibernation() {
    let server = TestServer::start(presence::app()).await;
    let mut ann = server.connect("/presence/team?userId=ann").await;
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "presence_list", "users": [{"userId": "ann", "status": "online"}]})
    );
    let mut ben = server.connect("/presence/team?userId=ben").await;
    assert_eq!(
        recv(&mut ben).await,
        json!({"type": "presence_list", "users": [{"userId": "ann", "status": "online"}, {"userId": "ben", "status": "online"}]})
    );
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "user_joined", "userId": "ben"})
    );

    ann.send_text(r#"{"type":"status_update","status":"away"}"#)
        .await;
    let update = json!({"type": "presence_update", "userId": "ann", "status": "away"});
    assert_eq!(recv(&mut ann).await, update);
    assert_eq!(recv(&mut ben).await, update);

    server.hibernate(presence::BINDING, "team").await;
    // A second tab of ben's: the status survived hibernation in the attachment.
    let mut ben2 = server.connect("/presence/team?userId=ben").await;
    let list = recv(&mut ben2).await;
    assert_eq!(list["users"][0], json!({"userId": "ann", "status": "away"}));
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "user_joined", "userId": "ben"})
    );
    assert_eq!(
        recv(&mut ben).await,
        json!({"type": "user_joined", "userId": "ben"})
    );

    // Ben leaves only when his last connection closes: the next thing Ann hears after his first
    // tab closed is his second tab's status, not his leaving.
    ben.close(1000, "").await;
    ben2.send_text(r#"{"type":"status_update","status":"busy"}"#)
        .await;
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "presence_update", "userId": "ben", "status": "busy"})
    );
    ben2.close(1000, "").await;
    assert_eq!(
        recv(&mut ann).await,
        json!({"type": "user_left", "userId": "ben"})
    );
}

#[tokio::test]
async fn requests_are_checked() {
    let server = TestServer::start(presence::app()).await;
    assert_eq!(server.request("GET", "/elsewhere", &[]).await.status, 400);
    assert_eq!(
        server.request("GET", "/presence/team", &[]).await.status,
        426
    );
}
