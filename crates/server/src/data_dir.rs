//! The data directory, held with an exclusive lock so that two servers never share object state.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Result, ServerError};

/// An open, locked data directory. The lock is released when this is dropped (or the process
/// dies, even by SIGKILL: the kernel drops file locks with the process).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` if needed and locks it.
    pub fn open(path: &Path) -> Result<DataDir> {
        let error = |message: String| ServerError::DataDir {
            path: path.to_owned(),
            message,
        };
        fs::create_dir_all(path).map_err(|e| error(format!("cannot create it: {e}")))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("LOCK"))
            .map_err(|e| error(format!("cannot open its LOCK file: {e}")))?;
        lock.try_lock()
            .map_err(|_| error("another Dormouse server is using it".into()))?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_is_refused() {
        let dir = std::env::temp_dir().join(format!("dormouse-lock-{}", std::process::id()));
        let first = DataDir::open(&dir).unwrap();
        let second = DataDir::open(&dir).unwrap_err();
        assert!(second.to_string().contains("another Dormouse server"));
        drop(first);
        DataDir::open(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
