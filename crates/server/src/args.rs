//! Command-line flags shared by every Dormouse server binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dormouse_runtime::{Durability, Limits, RuntimeConfig};

use crate::ServerOptions;

/// Flags every example and server takes, with the same defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to serve HTTP and WebSockets on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8787",
        env = "DORMOUSE_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Address of the admin endpoint: the inspector page (/), /metrics (Prometheus), /objects,
    /// /healthz. Off loopback it needs `--admin-token`.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:9787",
        env = "DORMOUSE_ADMIN_LISTEN"
    )]
    pub admin_listen: SocketAddr,

    /// Token every admin request must carry (`Authorization: Bearer …`, or the cookie the
    /// inspector page sets once asked for it). Required when the admin address is not on
    /// loopback.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DORMOUSE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Idle time after which an object that can hibernate leaves memory (e.g. 300ms, 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, env = "DORMOUSE_HIBERNATE_AFTER")]
    pub hibernate_after: Duration,

    /// Idle time after which an object that cannot hibernate (standard WebSockets) is evicted.
    #[arg(long, value_name = "DURATION", default_value = "70s", value_parser = humantime::parse_duration, env = "DORMOUSE_EVICT_AFTER")]
    pub evict_after: Duration,

    /// Directory for durable state; created if missing, locked against a second server.
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".dormouse",
        env = "DORMOUSE_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// When storage commits are durable: `full` (fsync on every commit) or `relaxed` (fsync at
    /// checkpoints: survives a crash of the process, may lose the last commits on power loss).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "full",
        env = "DORMOUSE_DURABILITY"
    )]
    pub durability: Durability,

    /// A configuration file (TOML): `[[migrations]]` and `[vars]`, as in wrangler.toml.
    #[arg(long, value_name = "FILE", env = "DORMOUSE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Silence after which a WebSocket is pinged (e.g. 30s); `0s` disables pings.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration, env = "DORMOUSE_PING_INTERVAL")]
    pub ping_interval: Duration,

    /// Time a pinged WebSocket (or a close handshake) has to answer before it is dropped.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, env = "DORMOUSE_PING_TIMEOUT")]
    pub ping_timeout: Duration,

    /// Bytes that may wait to be sent on one WebSocket; a client that falls further behind is
    /// disconnected (its object hears close code 1008).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_outbound_bytes, env = "DORMOUSE_MAX_OUTBOUND_BYTES")]
    pub max_outbound_bytes: usize,

    /// Kernel send buffer of each connection, in bytes (SO_SNDBUF); the kernel's own sizing
    /// (autotuned up to `net.ipv4.tcp_wmem`) when unset. Bounds the kernel memory a client that
    /// stops reading can hold, on top of `--max-outbound-bytes`.
    #[arg(long, value_name = "BYTES", env = "DORMOUSE_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,

    /// WebSocket connections one client address may hold open; past it, new upgrades from that
    /// address are answered 429 and its open connections are untouched. Unbounded when unset.
    #[arg(long, value_name = "N", env = "DORMOUSE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// A reverse proxy (its address, as connections from it arrive) whose `X-Forwarded-For`
    /// header names the client, for `--max-connections-per-ip` and the logs. Repeat it for
    /// several; comma-separated in the environment.
    #[arg(
        long,
        value_name = "IP",
        env = "DORMOUSE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// permessage-deflate for clients that offer it (`on`, the default, or `off`). Sockets hold
    /// no compression state either way: each message is compressed on its own.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_switch, env = "DORMOUSE_COMPRESSION")]
    pub compression: bool,

    /// Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes, env = "DORMOUSE_MAX_MESSAGE_SIZE")]
    pub max_message_size: usize,

    /// Join a cluster whose state is in this PostgreSQL database
    /// (`postgres://user@host:port/database`); the schema is created or migrated on start.
    /// Without it the server is a single node with local storage only.
    #[arg(
        long,
        value_name = "URL",
        env = "DORMOUSE_CLUSTER_DATABASE",
        hide_env_values = true
    )]
    pub cluster_database: Option<String>,

    /// Where the other nodes reach this node's `--listen` port (`host:port`), when it listens on
    /// an address they cannot use (such as 0.0.0.0). Default: the `--listen` address.
    #[arg(long, value_name = "ADDR", env = "DORMOUSE_NODE_ADDRESS")]
    pub node_address: Option<String>,

    /// The secret the nodes of a cluster share: every request one forwards to another carries it
    /// (header `x-dormouse-cluster-secret`), and one without it is refused (401). Required with
    /// `--cluster-database`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "DORMOUSE_CLUSTER_SECRET",
        hide_env_values = true
    )]
    pub cluster_secret: Option<String>,

    /// How long a node's lease in the cluster lasts without renewal: after it (and a grace of a
    /// fifth of it), another node takes over the objects of a node that stopped answering.
    #[arg(long, value_name = "DURATION", default_value = "6s", value_parser = humantime::parse_duration, env = "DORMOUSE_LEASE_TTL")]
    pub lease_ttl: Duration,

    /// Turns off the checks that keep a node from serving or committing to an object it no
    /// longer owns. Loses acknowledged writes: only for the test that proves the fault checker
    /// catches it.
    #[arg(long, hide = true)]
    pub unsafe_no_fencing: bool,
}

impl ServeArgs {
    /// How connections are set up, per these flags.
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            socket_send_buffer: self.socket_send_buffer,
            max_connections_per_ip: self.max_connections_per_ip,
            compression: self.compression,
            admin_token: self.admin_token.clone(),
            cluster_secret: self.cluster_secret.clone(),
            collectors: Vec::new(),
            trusted_proxies: self.trusted_proxy.clone(),
        }
    }

    /// The runtime configuration these flags describe.
    pub fn runtime_config(&self) -> RuntimeConfig {
        let defaults = RuntimeConfig::default();
        RuntimeConfig {
            hibernate_after: self.hibernate_after,
            evict_after: self.evict_after,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            limits: Limits {
                max_message_bytes: self.max_message_size,
                max_outbound_bytes: self.max_outbound_bytes,
                ..defaults.limits
            },
            ..defaults
        }
    }
}

/// `on` or `off`.
fn parse_switch(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("expected on or off, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults_and_human_durations() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(cli.serve.hibernate_after, Duration::from_secs(10));
        let cli = Cli::parse_from([
            "x",
            "--hibernate-after",
            "300ms",
            "--listen",
            "0.0.0.0:9000",
        ]);
        assert_eq!(cli.serve.hibernate_after, Duration::from_millis(300));
        assert_eq!(
            cli.serve.runtime_config().hibernate_after,
            Duration::from_millis(300)
        );
        assert!(Cli::try_parse_from(["x", "--hibernate-after", "soon"]).is_err());
    }
}
