//! Whether deferred foreign keys are violated right now.

use rusqlite::{Connection, ffi};

/// Whether the open transaction holds deferred foreign key violations, which its COMMIT would
/// refuse. SQLite counts them as it goes (`SQLITE_DBSTATUS_DEFERRED_FKS`), so asking costs no
/// scan of the tables.
pub(crate) fn deferred_violations(conn: &Connection) -> bool {
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is valid while `conn` is borrowed, and `sqlite3_db_status` only reads a
    // counter of it into the two integers, which outlive the call.
    #[allow(unsafe_code)]
    let status = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            ffi::SQLITE_DBSTATUS_DEFERRED_FKS,
            &mut current,
            &mut highest,
            0,
        )
    };
    status == ffi::SQLITE_OK && current > 0
}

/// The error SQLite's COMMIT gives for a deferred violation, for a turn refused before it.
pub(crate) fn violation_error() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
        Some("FOREIGN KEY constraint failed".to_owned()),
    )
}
