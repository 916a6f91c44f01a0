//! [`Session`]: one connection of a node to the cluster database. The protocol holds locks only
//! inside transactions, so a node may keep several sessions (one for its lease, so that renewals
//! never queue behind object work) and a transaction-mode pooler between them is safe.

use tokio_postgres::{Client, NoTls};

use crate::error::{ClusterError, Result};
use crate::schema;

/// One connection to the cluster database.
#[derive(Debug)]
pub struct Session {
    pub(crate) client: Client,
}

impl Session {
    /// Connects to `url` (`postgres://user@host:port/database`) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Session> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(ClusterError::Connect)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "cluster database connection ended");
            }
        });
        schema::migrate(&mut client).await?;
        Ok(Session { client })
    }

    /// Whether the connection ended (the database went away, or the network between): the
    /// session can do nothing more.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
