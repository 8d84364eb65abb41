//! The one query layer for the sensitive-word table, shared by the SQLite and PostgreSQL
//! adapters (numbered `$n` parameters, which both accept; instants as Unix milliseconds).
//! [`sensitive_word_store`] instantiates the port for each adapter's pool.

use crate::domain::sensitive_words::{SensitiveWord, WordMatch};
use crate::ports::store::{StoreError, StoreResult};

/// Columns of `sensitive_words`, in [`WordRow`] order.
pub(crate) const WORD_COLUMNS: &str = "id, word, match_type, enabled, note";

/// A `sensitive_words` row.
#[derive(sqlx::FromRow)]
pub(crate) struct WordRow {
    pub id: i64,
    pub word: String,
    pub match_type: String,
    pub enabled: bool,
    pub note: String,
}

impl TryFrom<WordRow> for SensitiveWord {
    type Error = StoreError;
    fn try_from(r: WordRow) -> StoreResult<SensitiveWord> {
        let match_type = WordMatch::parse(&r.match_type)
            .map_err(|_| StoreError::Corrupt(format!("bad match type {:?}", r.match_type)))?;
        Ok(SensitiveWord {
            id: r.id,
            word: r.word,
            match_type,
            enabled: r.enabled,
            note: r.note,
        })
    }
}

/// Implements `SensitiveWordStore` for `$store` (a type with a `pool` field of
/// `sqlx::Pool<$db>`), with `$map_err` turning sqlx errors into `StoreError`.
macro_rules! sensitive_word_store {
    ($store:ty, $map_err:path) => {
        #[async_trait::async_trait]
        impl $crate::ports::sensitive_words::SensitiveWordStore for $store {
            async fn list_sensitive_words(
                &self,
            ) -> $crate::ports::store::StoreResult<
                Vec<$crate::domain::sensitive_words::SensitiveWord>,
            > {
                use $crate::adapters::sensitive_words_sql::*;
                let sql = format!("SELECT {WORD_COLUMNS} FROM sensitive_words ORDER BY id");
                let rows: Vec<WordRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_sensitive_word(
                &self,
                w: &$crate::domain::sensitive_words::SensitiveWord,
            ) -> $crate::ports::store::StoreResult<$crate::domain::sensitive_words::SensitiveWord>
            {
                use $crate::adapters::sensitive_words_sql::*;
                let sql = format!(
                    "INSERT INTO sensitive_words (word, match_type, enabled, note, \
                     created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5) \
                     RETURNING {WORD_COLUMNS}"
                );
                let row: WordRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&w.word)
                    .bind(w.match_type.as_str())
                    .bind(w.enabled)
                    .bind(&w.note)
                    .bind(chrono::Utc::now().timestamp_millis())
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_err)?;
                row.try_into()
            }

            async fn update_sensitive_word(
                &self,
                w: &$crate::domain::sensitive_words::SensitiveWord,
            ) -> $crate::ports::store::StoreResult<$crate::domain::sensitive_words::SensitiveWord>
            {
                use $crate::adapters::sensitive_words_sql::*;
                let sql = format!(
                    "UPDATE sensitive_words SET word = $1, match_type = $2, enabled = $3, \
                     note = $4, updated_at_ms = $5 WHERE id = $6 RETURNING {WORD_COLUMNS}"
                );
                let row: Option<WordRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&w.word)
                    .bind(w.match_type.as_str())
                    .bind(w.enabled)
                    .bind(&w.note)
                    .bind(chrono::Utc::now().timestamp_millis())
                    .bind(w.id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_err)?;
                row.ok_or($crate::ports::store::StoreError::NotFound)?
                    .try_into()
            }

            async fn delete_sensitive_word(
                &self,
                id: i64,
            ) -> $crate::ports::store::StoreResult<()> {
                let done = sqlx::query("DELETE FROM sensitive_words WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::ports::store::StoreError::NotFound);
                }
                Ok(())
            }
        }
    };
}

pub(crate) use sensitive_word_store;
