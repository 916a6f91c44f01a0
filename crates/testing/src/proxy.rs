//! A TCP proxy with a switch, for partition tests: put in front of PostgreSQL or of a node, it
//! forwards until told to cut the link (every connection it carries is closed and new ones are
//! refused) or to black-hole it (connections stay open and nothing flows, as when a network drops
//! packets: the peers see silence, not an error), until it is healed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The state of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bytes flow.
    Open,
    /// Connections are closed; new ones are closed as they arrive.
    Cut,
    /// Connections stay open; nothing flows either way.
    BlackHole,
}

/// A proxy on a loopback port in front of `target`.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    link: Arc<watch::Sender<Link>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        // An address of the proxies' own, so that the port a test server was given on 127.0.0.1
        // can never be taken by a proxy starting meanwhile.
        let listener = TcpListener::bind("127.0.0.254:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let link = Arc::new(watch::channel(Link::Open).0);
        let switch = link.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *switch.borrow() == Link::Cut {
                    continue;
                }
                let state = switch.subscribe();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        carry(client, server, state).await;
                    }
                });
            }
        });
        FaultProxy {
            addr,
            link,
            accepting,
        }
    }

    /// Where to connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.link.send_replace(Link::Cut);
    }

    /// Stops every byte, both ways, keeping connections open.
    pub fn black_hole(&self) {
        self.link.send_replace(Link::BlackHole);
    }

    /// Lets bytes flow again (what was held back flows on).
    pub fn heal(&self) {
        self.link.send_replace(Link::Open);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// Forwards between the two sides while the link is open; holds still while it is black-holed;
/// ends (dropping both sides) when it is cut.
async fn carry(client: TcpStream, server: TcpStream, state: watch::Receiver<Link>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, state.clone()) => {}
        () = pump(server_read, client_write, state) => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut state: watch::Receiver<Link>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // Wait until bytes may flow; end on a cut.
        loop {
            match *state.borrow_and_update() {
                Link::Open => break,
                Link::Cut => return,
                Link::BlackHole => {}
            }
            if state.changed().await.is_err() {
                return;
            }
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if to.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
        }
    }
}
