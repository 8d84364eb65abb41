//! Process-wide SQLite settings, set once before the first connection opens (SQLite accepts
//! them only before it initialises).
//!
//! The one setting: statement journals stay in memory up to [`STMT_JOURNAL_SPILL_BYTES`].
//! Every multi-row `INSERT … ON CONFLICT` of a log batch (and every roll-up upsert) keeps the
//! original of each page it changes in a statement journal, so that the statement alone can
//! be undone. Past SQLite's default threshold of 64 KiB the journal spills to a temporary file:
//! a file created, written page by page and deleted for every batch. In the closed loop that
//! was 39 % of the SQLite threads' writes (6,400 of 16,500 `pwrite` calls in 3 s, `strace`),
//! and the SQLite threads spent more time in the kernel than in SQLite itself.

use std::sync::OnceLock;

/// Bytes a statement journal holds in memory before it spills to a file. Bound: only one
/// write transaction runs at a time, so this is at most one journal's worth of memory,
/// transient; a log batch (256 rows, each touching the table and its eight indexes) journals
/// a few hundred kilobytes. A larger statement (a retention delete) spills as before.
pub const STMT_JOURNAL_SPILL_BYTES: i32 = 4 * 1024 * 1024;

/// Whether the threshold took effect in this process (false when SQLite had already
/// initialised, which only happens if something opened SQLite outside `SqliteStore`).
static APPLIED: OnceLock<bool> = OnceLock::new();

/// Sets the process-wide settings; called before every open, runs once. Harmless after
/// SQLite has initialised (SQLite refuses, the defaults stay, a debug line says so).
pub fn apply() -> bool {
    *APPLIED.get_or_init(|| {
        // SAFETY: `sqlite3_config` must not run concurrently with any other SQLite call and
        // only before `sqlite3_initialize`. Every SQLite connection of this process is opened
        // by `SqliteStore::connect`, which calls this first; `OnceLock` makes concurrent
        // callers wait here, so no open can overlap it. If SQLite is already initialised the
        // call returns `SQLITE_MISUSE` and changes nothing. The variadic argument is the C
        // `int` the option documents.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_STMTJRNL_SPILL,
                std::ffi::c_int::from(STMT_JOURNAL_SPILL_BYTES),
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite already initialised: statement journals keep the default spill threshold"
            );
        }
        rc == libsqlite3_sys::SQLITE_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each test runs in its own process (nextest), so this one reaches SQLite first: the
    /// setting must be accepted, and a database opened afterwards must work.
    #[tokio::test]
    async fn the_spill_threshold_is_accepted_before_the_first_open() {
        assert!(
            apply(),
            "sqlite3_config refused the statement journal threshold"
        );
        assert!(apply(), "a second call reports the same");
        let store = crate::adapters::sqlite::SqliteStore::connect("sqlite::memory:")
            .await
            .unwrap();
        store.migrate().await.unwrap();
    }
}
