//! The object's alarm, stored in its own database: the truth about when it should fire.

use rusqlite::OptionalExtension;

use crate::error::{Result, StorageError};
use crate::store::ObjectStore;

impl ObjectStore {
    /// When the alarm is set for, in milliseconds since the epoch.
    pub fn alarm(&mut self) -> Result<Option<i64>> {
        self.before(false)?;
        Ok(self
            .conn
            .query_row(
                "SELECT at_ms FROM _dormouse_alarm WHERE id = 0",
                [],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Sets the alarm (replacing any other) or, with `None`, deletes it.
    pub fn set_alarm(&mut self, at_ms: Option<i64>) -> Result<()> {
        self.before(true)?;
        match at_ms {
            Some(at) if at <= 0 => return Err(StorageError::Invalid(format!("alarm time must be positive, got {at}"))),
            Some(at) => self.conn.execute(
                "INSERT INTO _dormouse_alarm (id, at_ms) VALUES (0, ?1) ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
                [at],
            )?,
            None => self.conn.execute("DELETE FROM _dormouse_alarm", [])?,
        };
        Ok(())
    }
}
