//! Compaction of an object's log: the pages its commits wrote, up to one of them, folded into a
//! stored image of the database (the latest version of each page), and the log before it
//! deleted. A restore then reads the image and the commits after it, however long the object
//! has lived. Only the owner compacts, under its epoch, like a commit.

use std::collections::BTreeMap;

use dormouse_storage::CommitPages;

use crate::error::{ClusterError, Result};
use crate::ownership::{ObjectKey, Ownership};
use crate::session::Session;

/// The stored image of an object's database: the commit it is as of, and its pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageImage {
    /// The last commit folded in; 0 when nothing was.
    pub(crate) seq: i64,
    /// The image as a commit that writes every page (`None` when nothing was folded in).
    pub(crate) pages: Option<CommitPages>,
}

impl Session {
    /// Folds the object's commits up to `through` into its page image and deletes them from the
    /// log; returns how many were folded. Fails with [`ClusterError::Fenced`] if the object is
    /// not owned under `ownership.epoch`.
    pub async fn compact(&mut self, ownership: &Ownership, through: i64) -> Result<usize> {
        let key = &ownership.key;
        let transaction = self.client.transaction().await?;
        let row = transaction
            .query_opt(
                "SELECT page_seq FROM dormouse_objects
                 WHERE namespace = $1 AND object_id = $2 AND epoch = $3 FOR UPDATE",
                &[&key.namespace, &&key.id[..], &ownership.epoch],
            )
            .await?;
        let Some(row) = row else {
            return Err(ClusterError::Fenced {
                object: key.to_string(),
                epoch: ownership.epoch,
                head: ownership.head_seq,
            });
        };
        let folded_before: i64 = row.get(0);
        let rows = transaction
            .query(
                "SELECT seq, frames FROM dormouse_object_log
                 WHERE namespace = $1 AND object_id = $2 AND seq > $3 AND seq <= $4 ORDER BY seq",
                &[&key.namespace, &&key.id[..], &folded_before, &through],
            )
            .await?;
        let Some(last_row) = rows.last() else {
            return Ok(0);
        };
        let folded_through: i64 = last_row.get(0);
        let last = decode(last_row.get(1))?;
        let mut pages: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for row in &rows {
            pages.extend(decode(row.get(1))?.pages);
        }
        // One statement for every page: an object of thousands of pages is one round trip.
        let (numbers, contents): (Vec<i32>, Vec<Vec<u8>>) = pages
            .into_iter()
            .map(|(page, data)| (page as i32, data))
            .unzip();
        transaction
            .execute(
                "INSERT INTO dormouse_object_pages (namespace, object_id, page, data)
                 SELECT $1, $2, page, data FROM unnest($3::integer[], $4::bytea[]) AS p(page, data)
                 ON CONFLICT (namespace, object_id, page) DO UPDATE SET data = EXCLUDED.data",
                &[&key.namespace, &&key.id[..], &numbers, &contents],
            )
            .await?;
        // A database that shrank (a VACUUM) drops its pages past the end.
        let database_pages = i64::from(last.database_pages);
        transaction
            .execute(
                "DELETE FROM dormouse_object_pages
                 WHERE namespace = $1 AND object_id = $2 AND page > $3::bigint",
                &[&key.namespace, &&key.id[..], &database_pages],
            )
            .await?;
        transaction
            .execute(
                "UPDATE dormouse_objects SET page_seq = $3, page_size = $4, database_pages = $5
                 WHERE namespace = $1 AND object_id = $2",
                &[
                    &key.namespace,
                    &&key.id[..],
                    &folded_through,
                    &(last.page_size as i32),
                    &database_pages,
                ],
            )
            .await?;
        transaction
            .execute(
                "DELETE FROM dormouse_object_log
                 WHERE namespace = $1 AND object_id = $2 AND seq <= $3",
                &[&key.namespace, &&key.id[..], &folded_through],
            )
            .await?;
        transaction.commit().await?;
        Ok(rows.len())
    }

    /// The object's stored page image.
    pub(crate) async fn page_image(&mut self, key: &ObjectKey) -> Result<PageImage> {
        let row = self
            .client
            .query_opt(
                "SELECT page_seq, page_size, database_pages FROM dormouse_objects
                 WHERE namespace = $1 AND object_id = $2",
                &[&key.namespace, &&key.id[..]],
            )
            .await?;
        let Some((seq, Some(page_size), Some(database_pages))) = row.map(|row| {
            (
                row.get::<_, i64>(0),
                row.get::<_, Option<i32>>(1),
                row.get::<_, Option<i64>>(2),
            )
        }) else {
            return Ok(PageImage {
                seq: 0,
                pages: None,
            });
        };
        let pages = self
            .client
            .query(
                "SELECT page, data FROM dormouse_object_pages
                 WHERE namespace = $1 AND object_id = $2 ORDER BY page",
                &[&key.namespace, &&key.id[..]],
            )
            .await?
            .iter()
            .map(|row| (row.get::<_, i32>(0) as u32, row.get::<_, Vec<u8>>(1)))
            .collect();
        Ok(PageImage {
            seq,
            pages: Some(CommitPages {
                page_size: page_size as u32,
                database_pages: database_pages as u32,
                pages,
            }),
        })
    }
}

fn decode(frames: &[u8]) -> Result<CommitPages> {
    CommitPages::decode(frames).map_err(ClusterError::Storage)
}
