//! What application SQL may do: SQLite's authorizer, active only while application SQL runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Tables the runtime keeps in every object database; application SQL may not touch them.
pub(crate) const RESERVED_PREFIX: &str = "_dormouse_";

/// Pragmas application SQL may run (workerd's allow-list: read-only queries and per-connection
/// switches, never durability or locking settings).
const ALLOWED_PRAGMAS: &[&str] = &[
    "data_version",
    "page_size",
    "case_sensitive_like",
    "foreign_keys",
    "defer_foreign_keys",
    "ignore_check_constraints",
    "legacy_alter_table",
    "recursive_triggers",
    "reverse_unordered_selects",
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "quick_check",
    "optimize",
    "table_info",
    "table_xinfo",
    "table_list",
];

/// Cloudflare's explanation, with Dormouse's method names.
pub(crate) const NO_SQL_TRANSACTIONS: &str = "To execute a transaction, please use the storage.transaction_sync() API \
instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The API is safer because it rolls back automatically on \
errors, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

/// Shared between the store and its authorizer callback.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    /// Application SQL is being prepared: enforce the rules.
    active: AtomicBool,
    /// Why the last refusal happened, for a better message than SQLite's "not authorized".
    refusal: Mutex<Option<String>>,
}

impl Guard {
    pub(crate) fn new() -> Arc<Guard> {
        Arc::new(Guard::default())
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::SeqCst);
        if active {
            *self.refusal.lock().expect("guard lock") = None;
        }
    }

    pub(crate) fn take_refusal(&self) -> Option<String> {
        self.refusal.lock().expect("guard lock").take()
    }

    /// The authorizer: allows everything the runtime does, and what application SQL may do.
    pub(crate) fn authorize(&self, context: AuthContext<'_>) -> Authorization {
        if !self.active.load(Ordering::SeqCst) {
            return Authorization::Allow;
        }
        match self.check(&context.action) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                *self.refusal.lock().expect("guard lock") = Some(reason);
                Authorization::Deny
            }
        }
    }

    fn check(&self, action: &AuthAction<'_>) -> Result<(), String> {
        use AuthAction::*;
        let reserved = |name: &str| {
            if name.len() >= RESERVED_PREFIX.len()
                && name[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX)
            {
                Err(format!(
                    "access to {name} is prohibited: names starting with {RESERVED_PREFIX} are reserved"
                ))
            } else {
                Ok(())
            }
        };
        match action {
            Transaction { .. } | Savepoint { .. } => Err(NO_SQL_TRANSACTIONS.to_owned()),
            Attach { .. } | Detach { .. } => Err("ATTACH and DETACH are not allowed".to_owned()),
            Pragma {
                pragma_name,
                pragma_value,
            } => {
                let name = pragma_name.to_ascii_lowercase();
                if !ALLOWED_PRAGMAS.contains(&name.as_str()) {
                    return Err(format!("PRAGMA {pragma_name} is not allowed"));
                }
                if pragma_value.is_some() && name == "page_size" {
                    return Err("PRAGMA page_size cannot be changed".to_owned());
                }
                Ok(())
            }
            Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => {
                Err("load_extension() is not allowed".to_owned())
            }
            CreateTable { table_name }
            | CreateTempTable { table_name }
            | DropTable { table_name }
            | DropTempTable { table_name }
            | Delete { table_name }
            | Insert { table_name }
            | Read { table_name, .. }
            | Update { table_name, .. }
            | AlterTable { table_name, .. }
            | Analyze { table_name } => reserved(table_name),
            CreateIndex {
                index_name,
                table_name,
            }
            | CreateTempIndex {
                index_name,
                table_name,
            }
            | DropIndex {
                index_name,
                table_name,
            }
            | DropTempIndex {
                index_name,
                table_name,
            }
            | CreateTrigger {
                trigger_name: index_name,
                table_name,
            }
            | CreateTempTrigger {
                trigger_name: index_name,
                table_name,
            }
            | DropTrigger {
                trigger_name: index_name,
                table_name,
            }
            | DropTempTrigger {
                trigger_name: index_name,
                table_name,
            } => {
                reserved(index_name)?;
                reserved(table_name)
            }
            CreateView { view_name }
            | CreateTempView { view_name }
            | DropView { view_name }
            | DropTempView { view_name } => reserved(view_name),
            _ => Ok(()),
        }
    }
}
