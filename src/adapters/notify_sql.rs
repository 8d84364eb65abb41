//! The one query layer for notification storage, shared by the SQLite and PostgreSQL adapters:
//! the SQL is written once (numbered `$n` parameters, which both accept; instants as Unix
//! milliseconds; JSON as text), rows map to domain values here, and
//! [`notification_store`] instantiates the [`NotificationStore`] port for each adapter's pool.
//! The only dialect difference is the claim's row lock (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has one writer).
//!
//! [`NotificationStore`]: crate::ports::notifications::NotificationStore

use chrono::{DateTime, Utc};

use crate::domain::notify::target::{Target, TargetKind, TargetOptions};
use crate::domain::notify::{EventKind, Lang, Notice};
use crate::ports::notifications::{Delivery, OutboxItem};
use crate::ports::store::{StoreError, StoreResult};

/// Columns of `notification_targets`, in [`TargetRow`] order.
pub(crate) const TARGET_COLUMNS: &str =
    "id, name, kind, url, secret, enabled, events, lang, options";

/// Columns of `notification_deliveries`, in [`DeliveryRow`] order.
pub(crate) const DELIVERY_COLUMNS: &str = "id, at_ms, target_id, target_name, event, outbox_id, \
     attempt, outcome, status, answer, next_at_ms";

/// A `notification_targets` row.
#[derive(sqlx::FromRow)]
pub(crate) struct TargetRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub secret: Option<String>,
    pub enabled: bool,
    pub events: String,
    pub lang: String,
    pub options: String,
}

impl TryFrom<TargetRow> for Target {
    type Error = StoreError;
    fn try_from(r: TargetRow) -> StoreResult<Target> {
        let kind = TargetKind::parse(&r.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("bad target kind {:?}", r.kind)))?;
        let names: Vec<String> = serde_json::from_str(&r.events)
            .map_err(|e| StoreError::Corrupt(format!("bad target events: {e}")))?;
        let events = names
            .iter()
            .map(|n| {
                EventKind::parse(n).ok_or_else(|| StoreError::Corrupt(format!("bad event {n:?}")))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let lang = Lang::parse(&r.lang)
            .ok_or_else(|| StoreError::Corrupt(format!("bad language {:?}", r.lang)))?;
        let options: TargetOptions = serde_json::from_str(&r.options)
            .map_err(|e| StoreError::Corrupt(format!("bad target options: {e}")))?;
        Ok(Target {
            id: r.id,
            name: r.name,
            kind,
            url: r.url,
            secret: r.secret,
            enabled: r.enabled,
            events,
            lang,
            options,
        })
    }
}

/// The events of a target as stored (a JSON list of wire names).
pub(crate) fn events_json(t: &Target) -> String {
    let names: Vec<&str> = t.events.iter().map(|e| e.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// The options of a target as stored.
pub(crate) fn options_json(t: &Target) -> String {
    serde_json::to_string(&t.options).unwrap_or_else(|_| "{}".into())
}

/// A claimed outbox row.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub target_id: i64,
    pub notice: String,
    pub repeats: i64,
    pub attempts: i64,
}

impl TryFrom<OutboxRow> for OutboxItem {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> StoreResult<OutboxItem> {
        let notice: Notice = serde_json::from_str(&r.notice)
            .map_err(|e| StoreError::Corrupt(format!("bad outbox notice: {e}")))?;
        Ok(OutboxItem {
            id: r.id,
            target_id: r.target_id,
            notice,
            repeats: u32::try_from(r.repeats.max(1)).unwrap_or(u32::MAX),
            attempts: u32::try_from(r.attempts.max(0)).unwrap_or(u32::MAX),
        })
    }
}

/// A `notification_deliveries` row.
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    pub id: i64,
    pub at_ms: i64,
    pub target_id: i64,
    pub target_name: String,
    pub event: String,
    pub outbox_id: i64,
    pub attempt: i64,
    pub outcome: String,
    pub status: Option<i64>,
    pub answer: String,
    pub next_at_ms: Option<i64>,
}

/// Milliseconds to an instant (out-of-range values are corrupt data).
pub(crate) fn from_ms(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("bad instant {ms}")))
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Delivery> {
        Ok(Delivery {
            id: r.id,
            at: from_ms(r.at_ms)?,
            target_id: r.target_id,
            target_name: r.target_name,
            event: r.event,
            outbox_id: r.outbox_id,
            attempt: u32::try_from(r.attempt.max(0)).unwrap_or(u32::MAX),
            outcome: r.outcome,
            status: r.status.and_then(|s| u16::try_from(s).ok()),
            answer: r.answer,
            next_at: r.next_at_ms.map(from_ms).transpose()?,
        })
    }
}

/// Implements `NotificationStore` for `$store` (a type with a `pool` field of `sqlx::Pool<$db>`)
/// with `$map_err` turning sqlx errors into `StoreError`; `$lock` is appended to the claim's
/// row selection.
macro_rules! notification_store {
    ($store:ty, $db:ty, $map_err:path, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::ports::notifications::NotificationStore for $store {
            async fn list_targets(
                &self,
            ) -> $crate::ports::store::StoreResult<Vec<$crate::domain::notify::target::Target>> {
                use $crate::adapters::notify_sql::*;
                let sql = format!("SELECT {TARGET_COLUMNS} FROM notification_targets ORDER BY id");
                let rows: Vec<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn get_target(
                &self,
                id: i64,
            ) -> $crate::ports::store::StoreResult<$crate::domain::notify::target::Target> {
                use $crate::adapters::notify_sql::*;
                let sql = format!("SELECT {TARGET_COLUMNS} FROM notification_targets WHERE id = $1");
                let row: Option<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_err)?;
                row.ok_or($crate::ports::store::StoreError::NotFound)?.try_into()
            }

            async fn insert_target(
                &self,
                t: &$crate::domain::notify::target::Target,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<$crate::domain::notify::target::Target> {
                use $crate::adapters::notify_sql::*;
                let sql = format!(
                    "INSERT INTO notification_targets (name, kind, url, secret, enabled, events, \
                     lang, options, created_at_ms, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {TARGET_COLUMNS}"
                );
                let row: TargetRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&t.name)
                    .bind(t.kind.as_str())
                    .bind(&t.url)
                    .bind(&t.secret)
                    .bind(t.enabled)
                    .bind(events_json(t))
                    .bind(t.lang.as_str())
                    .bind(options_json(t))
                    .bind(now.timestamp_millis())
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_err)?;
                row.try_into()
            }

            async fn update_target(
                &self,
                t: &$crate::domain::notify::target::Target,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<$crate::domain::notify::target::Target> {
                use $crate::adapters::notify_sql::*;
                let sql = format!(
                    "UPDATE notification_targets SET name = $1, kind = $2, url = $3, secret = $4, \
                     enabled = $5, events = $6, lang = $7, options = $8, updated_at_ms = $9 \
                     WHERE id = $10 RETURNING {TARGET_COLUMNS}"
                );
                let row: Option<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&t.name)
                    .bind(t.kind.as_str())
                    .bind(&t.url)
                    .bind(&t.secret)
                    .bind(t.enabled)
                    .bind(events_json(t))
                    .bind(t.lang.as_str())
                    .bind(options_json(t))
                    .bind(now.timestamp_millis())
                    .bind(t.id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_err)?;
                row.ok_or($crate::ports::store::StoreError::NotFound)?.try_into()
            }

            async fn delete_target(&self, id: i64) -> $crate::ports::store::StoreResult<()> {
                let done = sqlx::query("DELETE FROM notification_targets WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::ports::store::StoreError::NotFound);
                }
                Ok(())
            }

            async fn enqueue(
                &self,
                target_id: i64,
                notice: &$crate::domain::notify::Notice,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<()> {
                let json = serde_json::to_string(notice).map_err(|e| {
                    $crate::ports::store::StoreError::Corrupt(format!("notice: {e}"))
                })?;
                sqlx::query(
                    "INSERT INTO notification_outbox (target_id, event, coalesce_key, notice, \
                     repeats, attempts, state, due_at_ms, created_at_ms) \
                     VALUES ($1, $2, $3, $4, 1, 0, 'pending', $5, $5) \
                     ON CONFLICT (target_id, coalesce_key) WHERE state = 'pending' \
                     DO UPDATE SET repeats = notification_outbox.repeats + 1, notice = excluded.notice",
                )
                .bind(target_id)
                .bind(notice.event.as_str())
                .bind(&notice.coalesce_key)
                .bind(json)
                .bind(now.timestamp_millis())
                .execute(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(())
            }

            async fn claim_due(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::ports::store::StoreResult<Vec<$crate::ports::notifications::OutboxItem>>
            {
                use $crate::adapters::notify_sql::*;
                let sql = concat!(
                    "UPDATE notification_outbox SET state = 'sending', lease_until_ms = $1 \
                     WHERE id IN (SELECT id FROM notification_outbox \
                     WHERE (state = 'pending' AND due_at_ms <= $2) \
                     OR (state = 'sending' AND lease_until_ms < $2) \
                     ORDER BY due_at_ms, id LIMIT $3 ",
                    $lock,
                    ") RETURNING id, target_id, notice, repeats, attempts"
                );
                let rows: Vec<OutboxRow> = sqlx::query_as(sql)
                    .bind(lease_until.timestamp_millis())
                    .bind(now.timestamp_millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_err)?;
                let mut items: Vec<$crate::ports::notifications::OutboxItem> = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, _>>()?;
                items.sort_by_key(|i| i.id);
                Ok(items)
            }

            async fn last_delivered(
                &self,
                target_id: i64,
                coalesce_key: &str,
            ) -> $crate::ports::store::StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                let ms: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(finished_at_ms) FROM notification_outbox \
                     WHERE target_id = $1 AND coalesce_key = $2 AND state = 'delivered'",
                )
                .bind(target_id)
                .bind(coalesce_key)
                .fetch_one(&self.pool)
                .await
                .map_err($map_err)?;
                ms.map($crate::adapters::notify_sql::from_ms).transpose()
            }

            async fn defer(
                &self,
                item: &$crate::ports::notifications::OutboxItem,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err($map_err)?;
                requeue(&mut tx, item, until.timestamp_millis(), item.attempts).await?;
                tx.commit().await.map_err($map_err)
            }

            async fn finish(
                &self,
                item: &$crate::ports::notifications::OutboxItem,
                outcome: $crate::ports::notifications::Outcome,
                log: &$crate::ports::notifications::Delivery,
            ) -> $crate::ports::store::StoreResult<()> {
                use $crate::ports::notifications::Outcome;
                let mut tx = self.pool.begin().await.map_err($map_err)?;
                insert_delivery(&mut tx, log).await?;
                let attempts = item.attempts.saturating_add(1);
                match outcome {
                    Outcome::Retry(at) => {
                        requeue(&mut tx, item, at.timestamp_millis(), attempts).await?
                    }
                    Outcome::Delivered | Outcome::Failed => {
                        sqlx::query(
                            "UPDATE notification_outbox SET state = $1, attempts = $2, \
                             lease_until_ms = NULL, finished_at_ms = $3 WHERE id = $4",
                        )
                        .bind(outcome.as_str())
                        .bind(i64::from(attempts))
                        .bind(log.at.timestamp_millis())
                        .bind(item.id)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_err)?;
                    }
                }
                tx.commit().await.map_err($map_err)
            }

            async fn log_delivery(
                &self,
                log: &$crate::ports::notifications::Delivery,
            ) -> $crate::ports::store::StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err($map_err)?;
                insert_delivery(&mut tx, log).await?;
                tx.commit().await.map_err($map_err)
            }

            async fn list_deliveries(
                &self,
                target_id: Option<i64>,
                before_id: Option<i64>,
                limit: u32,
            ) -> $crate::ports::store::StoreResult<Vec<$crate::ports::notifications::Delivery>>
            {
                use $crate::adapters::notify_sql::*;
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries \
                     WHERE ($1 IS NULL OR target_id = $1) AND ($2 IS NULL OR id < $2) \
                     ORDER BY id DESC LIMIT $3"
                );
                let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(target_id)
                    .bind(before_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn prune_notifications(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::ports::store::StoreResult<u64> {
                let ms = before.timestamp_millis();
                let a = sqlx::query("DELETE FROM notification_deliveries WHERE at_ms < $1")
                    .bind(ms)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                let b = sqlx::query(
                    "DELETE FROM notification_outbox WHERE finished_at_ms IS NOT NULL \
                     AND finished_at_ms < $1",
                )
                .bind(ms)
                .execute(&self.pool)
                .await
                .map_err($map_err)?;
                Ok(a.rows_affected() + b.rows_affected())
            }
        }

        /// Puts a claimed message back to `pending` due at `due_ms`, or folds it into a newer
        /// pending message with the same key (adding its count) when there is one.
        async fn requeue(
            tx: &mut sqlx::Transaction<'_, $db>,
            item: &$crate::ports::notifications::OutboxItem,
            due_ms: i64,
            attempts: u32,
        ) -> $crate::ports::store::StoreResult<()> {
            let merged = sqlx::query(
                "UPDATE notification_outbox SET repeats = repeats + $1 \
                 WHERE target_id = $2 AND coalesce_key = $3 AND state = 'pending' AND id <> $4",
            )
            .bind(i64::from(item.repeats))
            .bind(item.target_id)
            .bind(&item.notice.coalesce_key)
            .bind(item.id)
            .execute(&mut **tx)
            .await
            .map_err($map_err)?;
            let (state, finished) = if merged.rows_affected() > 0 {
                ("merged", Some(due_ms))
            } else {
                ("pending", None)
            };
            sqlx::query(
                "UPDATE notification_outbox SET state = $1, due_at_ms = $2, attempts = $3, \
                 lease_until_ms = NULL, finished_at_ms = $4 WHERE id = $5",
            )
            .bind(state)
            .bind(due_ms)
            .bind(i64::from(attempts))
            .bind(finished)
            .bind(item.id)
            .execute(&mut **tx)
            .await
            .map_err($map_err)?;
            Ok(())
        }

        async fn insert_delivery(
            tx: &mut sqlx::Transaction<'_, $db>,
            d: &$crate::ports::notifications::Delivery,
        ) -> $crate::ports::store::StoreResult<()> {
            sqlx::query(
                "INSERT INTO notification_deliveries (at_ms, target_id, target_name, event, \
                 outbox_id, attempt, outcome, status, answer, next_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(d.at.timestamp_millis())
            .bind(d.target_id)
            .bind(&d.target_name)
            .bind(&d.event)
            .bind(d.outbox_id)
            .bind(i64::from(d.attempt))
            .bind(&d.outcome)
            .bind(d.status.map(i64::from))
            .bind(&d.answer)
            .bind(d.next_at.map(|t| t.timestamp_millis()))
            .execute(&mut **tx)
            .await
            .map_err($map_err)?;
            Ok(())
        }
    };
}

pub(crate) use notification_store;
