//! Loopback ports: a free one, and waiting for a process to listen on one.

use std::net::SocketAddr;
use std::time::Duration;

/// A loopback port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// Waits until something accepts connections on `addr`, for at most `limit`; false if nothing
/// did. For a process that is starting up, polled at a modest pace.
pub async fn wait_until_listening(addr: SocketAddr, limit: Duration) -> bool {
    let wait = async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}
