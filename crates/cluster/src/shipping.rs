//! An object's commits between its database file and the cluster database: the owner ships each
//! commit's pages, fenced by its epoch, before the commit's output may leave; a node that claims
//! the object rebuilds the file from them. The pages come from the object's write-ahead log
//! ([`WalCursor`]), so KV and SQL writes travel together, commit by commit.

use std::path::Path;

use dormouse_storage::{CommitPages, WalCursor};

use crate::error::{ClusterError, Result};
use crate::ownership::{ObjectKey, Ownership};
use crate::session::Session;

impl Session {
    /// Appends every commit `cursor` has not read yet, in order, under `ownership`; returns how
    /// many. Fails with [`ClusterError::Fenced`] at the first commit the object's log refuses:
    /// the object must be dropped and the output of the unshipped commits discarded.
    pub async fn ship(
        &mut self,
        ownership: &mut Ownership,
        cursor: &mut WalCursor,
    ) -> Result<usize> {
        let commits = cursor.read_commits().map_err(ClusterError::Storage)?;
        for commit in &commits {
            self.append(ownership, &commit.encode()).await?;
        }
        Ok(commits.len())
    }

    /// Rebuilds the database of `key` at `database` from the cluster database: its page image,
    /// then the commits after it (the file there, and any log beside it, are replaced); returns
    /// the sequence number of the last commit, which a claim's [`Ownership::head_seq`] must
    /// equal for the copy to be current.
    pub async fn restore(&mut self, key: &ObjectKey, database: &Path) -> Result<i64> {
        let image = self.page_image(key).await?;
        let logged = self.commits_after(key, image.seq).await?;
        let mut commits = Vec::with_capacity(logged.len() + 1);
        commits.extend(image.pages);
        for commit in &logged {
            commits.push(CommitPages::decode(&commit.frames).map_err(ClusterError::Storage)?);
        }
        let path = database.to_owned();
        tokio::task::spawn_blocking(move || dormouse_storage::restore(&path, &commits))
            .await
            .map_err(|panic| ClusterError::Restore(panic.to_string()))?
            .map_err(ClusterError::Storage)?;
        Ok(logged.last().map_or(image.seq, |commit| commit.seq))
    }
}
