//! Storage of the sensitive-word rules. Read in full into each configuration snapshot, written
//! by the admin API; one implementation serves SQLite and PostgreSQL.

use async_trait::async_trait;

use crate::domain::sensitive_words::SensitiveWord;

use super::store::StoreResult;

/// The `sensitive_words` table.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait SensitiveWordStore: Send + Sync {
    /// Every rule, ordered by id.
    async fn list_sensitive_words(&self) -> StoreResult<Vec<SensitiveWord>>;
    /// Inserts a rule (its id is ignored) and returns it with its id. A rule with the same
    /// word and match type already stored is a conflict.
    async fn insert_sensitive_word(&self, w: &SensitiveWord) -> StoreResult<SensitiveWord>;
    /// Replaces a rule by id.
    async fn update_sensitive_word(&self, w: &SensitiveWord) -> StoreResult<SensitiveWord>;
    /// Deletes a rule.
    async fn delete_sensitive_word(&self, id: i64) -> StoreResult<()>;
}
