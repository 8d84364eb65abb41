//! Keeps pooled SQLite connections honest about transactions.
//!
//! When a statement fails with `SQLITE_FULL` or `SQLITE_IOERR` (a full or failing disk), SQLite
//! may roll the whole transaction back on its own. sqlx does not notice: its transaction depth
//! stays at 1, the `ROLLBACK` it sends when the transaction is dropped fails ("no transaction is
//! active") and the depth never returns to 0. The next `begin` on that connection then sends
//! `SAVEPOINT` instead of `BEGIN`, and a failed insert inside it sends `ROLLBACK TO`, which
//! leaves a real transaction open: the connection holds the write lock for ever, its later
//! "commits" only release savepoints, readers on other connections never see those rows, and
//! they are rolled back when the process exits. This module closes that hole at the pool: a
//! connection goes back to the pool only when both sqlx and SQLite agree it is outside any
//! transaction; otherwise it is closed, which rolls back and releases its locks.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Error};

/// Whether SQLite itself has a transaction open on this connection (`sqlite3_get_autocommit`),
/// whatever sqlx's own bookkeeping says.
pub(super) async fn sqlite_in_transaction(conn: &mut SqliteConnection) -> Result<bool, Error> {
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle();
    // SAFETY: `lock_handle` gives exclusive access to the live database handle for the guard's
    // lifetime; `sqlite3_get_autocommit` only reads the connection's autocommit flag.
    let autocommit = unsafe { libsqlite3_sys::sqlite3_get_autocommit(raw.as_ptr()) };
    Ok(autocommit == 0)
}

/// Decides whether a released connection may return to the pool. A queued rollback of a
/// dropped transaction is flushed first (the ping runs after it on the connection's worker).
pub(super) async fn fit_for_reuse(conn: &mut SqliteConnection) -> Result<bool, Error> {
    conn.ping().await?;
    if conn.is_in_transaction() || sqlite_in_transaction(conn).await? {
        tracing::warn!("discarding a database connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}
