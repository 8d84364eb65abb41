//! Notification storage on SQLite (the shared query layer in [`crate::adapters::notify_sql`];
//! a single writer, so the claim needs no row lock).

use super::SqliteStore;

crate::adapters::notify_sql::notification_store!(
    SqliteStore,
    sqlx::Sqlite,
    super::codec::map_err,
    ""
);
