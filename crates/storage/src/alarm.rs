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

#[cfg(test)]
mod tests {
    use crate::test_support::temp_store;
    use crate::{Durability, StorageError};

    #[test]
    fn an_alarm_is_set_read_replaced_and_deleted() {
        let (_path, mut store) = temp_store("alarm", Durability::Relaxed);
        assert_eq!(store.alarm().unwrap(), None);
        store.set_alarm(Some(1_700_000_000_000)).unwrap();
        assert_eq!(store.alarm().unwrap(), Some(1_700_000_000_000));
        store.set_alarm(Some(1)).unwrap();
        assert_eq!(store.alarm().unwrap(), Some(1), "the smallest valid time");
        store.set_alarm(None).unwrap();
        assert_eq!(store.alarm().unwrap(), None);
    }

    #[test]
    fn an_alarm_at_or_before_the_epoch_is_refused() {
        let (_path, mut store) = temp_store("alarm-zero", Durability::Relaxed);
        store.set_alarm(Some(5)).unwrap();
        for at in [0, -1] {
            let error = store.set_alarm(Some(at)).unwrap_err();
            assert!(matches!(error, StorageError::Invalid(_)), "{at}: {error}");
            assert_eq!(
                error.to_string(),
                format!("alarm time must be positive, got {at}")
            );
        }
        assert_eq!(
            store.alarm().unwrap(),
            Some(5),
            "the refused times changed nothing"
        );
    }
}
