//! User rows: SQL and the mapping to [`User`].

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::codec::{
    LIMIT_COLUMNS, LimitsRow, Values, expect_one, map_err, opt_text_to_ts, push_limits, text_to_ts,
    ts_to_text,
};
use crate::domain::user::{Role, User};
use crate::ports::store::{StoreError, StoreResult};

/// Every column, as read back.
const SELECT: &str = "SELECT id, name, role, provider_group, rpm_limit, limit_5h_usd, \
     limit_daily_usd, daily_reset_mode, daily_reset_time, limit_weekly_usd, limit_monthly_usd, \
     limit_total_usd, limit_concurrent_sessions, enabled, expires_at, note, created_at, \
     updated_at FROM users";

/// Columns written on insert and update, in [`push_values`] order.
const WRITE_COLUMNS_HEAD: &str = "name, role, provider_group, ";
const WRITE_COLUMNS_TAIL: &str = ", enabled, expires_at, note, updated_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    role: String,
    provider_group: String,
    #[sqlx(flatten)]
    limits: LimitsRow,
    enabled: bool,
    expires_at: Option<String>,
    note: String,
    created_at: String,
    updated_at: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id,
            name: r.name,
            role: Role::parse(&r.role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            provider_group: r.provider_group,
            limits: r.limits.into_limits()?,
            enabled: r.enabled,
            expires_at: opt_text_to_ts(r.expires_at.as_deref())?,
            note: r.note,
            created_at: text_to_ts(&r.created_at)?,
            updated_at: text_to_ts(&r.updated_at)?,
        })
    }
}

fn push_values(s: &mut Values<'_>, u: &User) {
    s.push_bind(u.name.clone())
        .push_bind(u.role.as_str())
        .push_bind(u.provider_group.clone());
    push_limits(s, &u.limits);
    s.push_bind(u.enabled)
        .push_bind(u.expires_at.as_ref().map(ts_to_text))
        .push_bind(u.note.clone())
        .push_bind(ts_to_text(&u.updated_at));
}

/// All users by id.
pub(super) async fn list(pool: &SqlitePool) -> StoreResult<Vec<User>> {
    let sql = format!("{SELECT} ORDER BY id");
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.into_iter().map(User::try_from).collect()
}

/// One user.
pub(super) async fn get(pool: &SqlitePool, id: i64) -> StoreResult<User> {
    let sql = format!("{SELECT} WHERE id = ?");
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    row.try_into()
}

/// Inserts and returns the stored row.
pub(super) async fn insert(pool: &SqlitePool, u: &User) -> StoreResult<User> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO users (");
    qb.push(WRITE_COLUMNS_HEAD)
        .push(LIMIT_COLUMNS)
        .push(WRITE_COLUMNS_TAIL)
        .push(", created_at) VALUES (");
    let mut s = qb.separated(", ");
    push_values(&mut s, u);
    s.push_bind(ts_to_text(&u.created_at));
    qb.push(") RETURNING id");
    let id: i64 = qb
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    get(pool, id).await
}

/// Replaces every field but `id` and `created_at`.
pub(super) async fn update(pool: &SqlitePool, u: &User) -> StoreResult<User> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE users SET (");
    qb.push(WRITE_COLUMNS_HEAD)
        .push(LIMIT_COLUMNS)
        .push(WRITE_COLUMNS_TAIL)
        .push(") = (");
    let mut s = qb.separated(", ");
    push_values(&mut s, u);
    qb.push(") WHERE id = ").push_bind(u.id);
    let done = qb.build().execute(pool).await.map_err(map_err)?;
    expect_one(done.rows_affected())?;
    get(pool, u.id).await
}

/// Deletes a user; their keys go with them (ON DELETE CASCADE).
pub(super) async fn delete(pool: &SqlitePool, id: i64) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    expect_one(done.rows_affected())
}
