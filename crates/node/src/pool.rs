//! [`SessionPool`]: the node's connections to the cluster database for object work (claims,
//! commits, releases), apart from the one that keeps its lease.

use std::sync::Mutex;
use std::time::Duration;

use dormouse_cluster::{ClusterError, Session};
use tokio::sync::Semaphore;

/// Connections one node keeps open at most: each carries one object's transaction at a time,
/// and PostgreSQL's default allows 100 connections for all nodes together.
pub const MAX_SESSIONS: usize = 16;

/// Sessions opened on demand, reused, and dropped when their connection ended.
#[derive(Debug)]
pub struct SessionPool {
    url: String,
    idle: Mutex<Vec<Session>>,
    permits: Semaphore,
}

impl SessionPool {
    /// A pool of sessions to `url`, none open yet.
    pub fn new(url: &str) -> SessionPool {
        SessionPool {
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_SESSIONS),
        }
    }

    /// Runs `work` on an idle session (or a new one), within `limit`; waits while
    /// [`MAX_SESSIONS`] are in use. The session goes back to the pool after work that finished,
    /// whatever its result; one whose work took too long is closed, since its connection may
    /// hang.
    pub async fn run<T>(
        &self,
        operation: &'static str,
        limit: Duration,
        work: impl AsyncFnOnce(&mut Session) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let bounded = async {
            let reused = {
                let mut idle = self.idle.lock().expect("session pool lock");
                idle.retain(|session| !session.is_closed());
                idle.pop()
            };
            let mut session = match reused {
                Some(session) => session,
                None => Session::connect(&self.url).await?,
            };
            let result = work(&mut session).await;
            if !session.is_closed() {
                self.idle.lock().expect("session pool lock").push(session);
            }
            result
        };
        match tokio::time::timeout(limit, bounded).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::TimedOut {
                operation,
                after: limit,
            }),
        }
    }
}
