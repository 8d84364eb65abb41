//! Notification storage on PostgreSQL (the shared query layer in
//! [`crate::adapters::notify_sql`]); the claim skips rows another instance holds, so each
//! message is delivered by one instance.

use super::PostgresStore;

crate::adapters::notify_sql::notification_store!(
    PostgresStore,
    sqlx::Postgres,
    super::codec::map_err,
    "FOR UPDATE SKIP LOCKED"
);
