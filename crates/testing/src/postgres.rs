//! A throwaway PostgreSQL server for cluster tests: `initdb` and `pg_ctl` from Debian's
//! `postgresql` package, in a temporary directory, on a free loopback port, gone when dropped.

use std::path::PathBuf;
use std::process::Command;

use crate::TempDir;
use crate::net::free_port_at;

/// The loopback address the servers listen on: one of their own, so that the port a test server
/// was given on 127.0.0.1 can never be taken by a database starting meanwhile.
const HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 253);

/// The database role and name the tests use.
const ROLE: &str = "dormouse";

/// A running PostgreSQL server of its own.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Its programs run as the `postgres` user, since PostgreSQL refuses to run as root.
    as_root: bool,
    /// Holds the data directory; removed after the server stopped.
    dir: TempDir,
}

impl Postgres {
    /// Where the server's programs are: `DORMOUSE_POSTGRES_BIN`, or the newest
    /// `/usr/lib/postgresql/<version>/bin`.
    pub fn binaries() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DORMOUSE_POSTGRES_BIN") {
            return Some(PathBuf::from(dir));
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    /// Creates and starts a server with durability off (tests do not survive power loss) and
    /// small buffers (tests run several at once), and waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = Postgres::binaries().expect(
            "PostgreSQL is not installed: run scripts/test, `apt-get install postgresql`, or set DORMOUSE_POSTGRES_BIN",
        );
        let dir = TempDir::new("postgres");
        let data = dir.path().join("data");
        let as_root = is_root();
        if as_root {
            // PostgreSQL refuses to run as root; its package's own user runs it.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let program = |name: &str| program(&bin, name, as_root);
        run(program("initdb").arg("-D").arg(&data).args([
            "-U",
            ROLE,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        let port = free_port_at(HOST.into()).port();
        let options = format!(
            "-k {} -p {port} -c listen_addresses={HOST} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=16MB",
            dir.path().display()
        );
        run(program("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-w", "-l"])
            .arg(dir.path().join("server.log"))
            .arg("start"));
        Postgres {
            bin,
            data,
            port,
            as_root,
            dir,
        }
    }

    /// A connection string for the test database.
    pub fn url(&self) -> String {
        Postgres::url_at(self.addr())
    }

    /// The connection string of the test database reached at `addr` (a proxy in front of it).
    pub fn url_at(addr: std::net::SocketAddr) -> String {
        format!("postgres://{ROLE}@{addr}/postgres")
    }

    /// Where the server listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from((HOST, self.port))
    }

    /// The server's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = program(&self.bin, "pg_ctl", self.as_root)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The server's program `name`, run as the `postgres` user when the tests run as root.
fn program(bin: &std::path::Path, name: &str, as_root: bool) -> Command {
    let mut command = if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(name));
        command
    } else {
        Command::new(bin.join(name))
    };
    command.env("LC_ALL", "C");
    command
}

/// Whether the tests run as root, read from `id -u` (no unsafe code for `geteuid`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
