//! The cluster database's schema, created or migrated when a node connects, versioned so that a
//! node never runs against a schema newer than it knows.

use tokio_postgres::Client;

use crate::error::{ClusterError, Result};

/// Serialises migrations of nodes that start together: a transaction-scoped advisory lock,
/// released at commit (correctness of leases never rests on advisory locks; this only keeps two
/// nodes from creating the same table at once).
const MIGRATION_LOCK: i64 = 0x646f_726d_6f75_7365; // "dormouse"

/// Each version's statements, in order; version N is `MIGRATIONS[N - 1]`. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: node leases, object ownership under epochs, each object's commit log.
    "CREATE SEQUENCE dormouse_incarnations;
     CREATE TABLE dormouse_nodes (
         node_id text PRIMARY KEY,
         incarnation bigint NOT NULL,
         addr text NOT NULL,
         lease_expires timestamptz NOT NULL,
         draining boolean NOT NULL DEFAULT false
     );
     CREATE TABLE dormouse_objects (
         namespace text NOT NULL,
         object_id bytea NOT NULL,
         owner_node text,
         owner_incarnation bigint,
         epoch bigint NOT NULL DEFAULT 0,
         head_seq bigint NOT NULL DEFAULT 0,
         PRIMARY KEY (namespace, object_id)
     );
     CREATE TABLE dormouse_object_log (
         namespace text NOT NULL,
         object_id bytea NOT NULL,
         seq bigint NOT NULL,
         epoch bigint NOT NULL,
         frames bytea NOT NULL,
         PRIMARY KEY (namespace, object_id, seq)
     );",
    // 2: compaction: each object's pages as of a commit, so that the log before it can go.
    "ALTER TABLE dormouse_objects
         ADD COLUMN page_seq bigint NOT NULL DEFAULT 0,
         ADD COLUMN page_size integer,
         ADD COLUMN database_pages bigint;
     CREATE TABLE dormouse_object_pages (
         namespace text NOT NULL,
         object_id bytea NOT NULL,
         page integer NOT NULL,
         data bytea NOT NULL,
         PRIMARY KEY (namespace, object_id, page)
     );",
    // 3: alarms, so that an alarm fires once cluster-wide, even for an object no node holds.
    "CREATE TABLE dormouse_alarms (
         namespace text NOT NULL,
         object_id bytea NOT NULL,
         fire_at timestamptz NOT NULL,
         PRIMARY KEY (namespace, object_id)
     );
     CREATE INDEX dormouse_alarms_due ON dormouse_alarms (fire_at);",
];

/// The newest schema version this binary writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the schema to [`SCHEMA_VERSION`], in one transaction.
pub(crate) async fn migrate(client: &mut Client) -> Result<()> {
    // Every session of every node starts here: when the schema is current, one query settles
    // it, without the lock that would make the nodes' connections queue behind each other.
    if let Some(found) = current_version(client).await {
        if found > SCHEMA_VERSION {
            return Err(ClusterError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
    }
    // "already exists, skipping" for every statement below says nothing.
    client
        .batch_execute("SET client_min_messages TO warning")
        .await?;
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS dormouse_schema (version integer NOT NULL)")
        .await?;
    let found: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM dormouse_schema", &[])
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(ClusterError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, statements) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        transaction.batch_execute(statements).await?;
        transaction
            .execute(
                "INSERT INTO dormouse_schema (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        tracing::info!(version, "cluster database schema migrated");
    }
    transaction.commit().await?;
    Ok(())
}

/// The schema's version, read without a lock; `None` before the first migration made its table
/// (or when reading failed: the locked path then says why).
async fn current_version(client: &Client) -> Option<i32> {
    client
        .query_one("SELECT coalesce(max(version), 0) FROM dormouse_schema", &[])
        .await
        .ok()
        .map(|row| row.get(0))
}
