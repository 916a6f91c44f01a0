//! What the inspector reads and does, served by the object's task between turns: a look at its
//! storage, deleting its alarm, a reset. None of it constructs an instance, so looking at a
//! hibernated object leaves it hibernated.

use dormouse_storage::{InspectLimits, ObjectStore, StorageError, StorageView};

use super::Inspection;
use super::task::Runner;

/// Why the inspector reset an object, for its log.
const RESET_BY_INSPECTOR: &str = "reset from the inspector";

impl Runner {
    /// Serves one of the inspector's instructions (after the object's writes settled).
    pub(super) async fn serve_inspector(&mut self, inspection: Inspection) {
        match inspection {
            Inspection::Read { limits, reply } => {
                let _ = reply.send(self.inspect_storage(&limits));
            }
            Inspection::DeleteAlarm(reply) => {
                let _ = reply.send(self.delete_alarm());
            }
            Inspection::Reset(done) => {
                self.reset(RESET_BY_INSPECTOR).await;
                let _ = done.send(());
            }
        }
    }

    /// The storage as the instance has it open, or as its file holds it; `None` when the object
    /// never stored anything (no file is made for a look).
    fn inspect_storage(&self, limits: &InspectLimits) -> Result<Option<StorageView>, StorageError> {
        if let Some(storage) = self.context.as_ref().and_then(|c| c.opened_storage()) {
            return storage.inspect(limits).map(Some);
        }
        match self.closed_store()? {
            Some(store) => store.inspect(limits).map(Some),
            None => Ok(None),
        }
    }

    fn delete_alarm(&self) -> Result<(), StorageError> {
        if let Some(storage) = self.context.as_ref().and_then(|c| c.opened_storage()) {
            return storage.clear_alarm();
        }
        let Some(mut store) = self.closed_store()? else {
            return Ok(());
        };
        store.set_alarm(None)?;
        if let Some(flusher) = store.log_flusher() {
            flusher.flush()?;
        }
        if let Some(site) = &self.cell.namespace.storage {
            site.alarms.set(&self.cell, None);
        }
        Ok(())
    }

    /// Opens the object's database when no instance has it open; `None` when it has none.
    fn closed_store(&self) -> Result<Option<ObjectStore>, StorageError> {
        let Some(site) = &self.cell.namespace.storage else {
            return Ok(None);
        };
        let path = site.database_path(&self.cell.id());
        if !path.exists() {
            return Ok(None);
        }
        ObjectStore::open(&path, site.durability).map(Some)
    }

    /// After an inspector's instruction to an object without an instance: goes back to sleep at
    /// once, as it was, unless events came meanwhile. Returns true when the task must end.
    pub(super) fn rest_after_inspection(&mut self) -> bool {
        if self.instance.is_some() {
            return false;
        }
        {
            let mut state = self.cell.state();
            if !state.mailbox.is_empty() {
                return false;
            }
            let any_socket = self.cell.blockers(&state).any_socket;
            state.go_dormant(false, any_socket);
        }
        self.shared.registry.retire_if_empty(&self.cell);
        true
    }
}
