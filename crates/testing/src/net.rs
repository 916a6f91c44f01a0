//! Loopback ports: a free one, and waiting for a process to listen on one.

use std::net::SocketAddr;
use std::time::Duration;

/// A loopback port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    free_port_at(std::net::Ipv4Addr::LOCALHOST.into())
}

/// A port of `ip` (any of 127.0.0.0/8: each cluster node of a test gets its own) nobody listens
/// on right now.
pub fn free_port_at(ip: std::net::IpAddr) -> SocketAddr {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("bind a free port");
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
