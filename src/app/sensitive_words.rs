//! Admin use cases for the sensitive-word filter: validated CRUD. Every write reloads the
//! snapshot (the rules are compiled there), and the periodic refresh carries it to the other
//! instances.

use crate::domain::error::ValidationError;
use crate::domain::sensitive_words::SensitiveWord;
use crate::ports::store::StoreError;

use super::admin::AdminError;
use super::context::AppContext;

fn store_err(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound => AdminError::NotFound("sensitive word"),
        StoreError::Conflict(_) => {
            AdminError::Conflict("a rule with this word and match type already exists".into())
        }
        StoreError::InvalidReference(m) | StoreError::Unavailable(m) | StoreError::Corrupt(m) => {
            AdminError::Unavailable(m)
        }
    }
}

async fn reload(ctx: &AppContext) {
    if let Err(e) = ctx.snapshot.reload(ctx.clock.now()).await {
        tracing::warn!(error = %e, "snapshot reload after a sensitive-word write failed; the periodic refresh will retry");
    }
}

/// Every rule, by id.
pub async fn list(ctx: &AppContext) -> Result<Vec<SensitiveWord>, AdminError> {
    ctx.sensitive_words
        .list_sensitive_words()
        .await
        .map_err(store_err)
}

/// One rule.
pub async fn get(ctx: &AppContext, id: i64) -> Result<SensitiveWord, AdminError> {
    list(ctx)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or(AdminError::NotFound("sensitive word"))
}

/// Validates (a pattern must compile within the size limits) and stores a new rule.
pub async fn create(ctx: &AppContext, mut w: SensitiveWord) -> Result<SensitiveWord, AdminError> {
    w.word = w.word.trim().to_string();
    w.validate()?;
    let saved = ctx
        .sensitive_words
        .insert_sensitive_word(&w)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(saved)
}

/// Applies `change` to rule `id`, validates and stores it.
pub async fn patch(
    ctx: &AppContext,
    id: i64,
    change: impl FnOnce(&mut SensitiveWord) -> Result<(), ValidationError>,
) -> Result<SensitiveWord, AdminError> {
    let mut w = get(ctx, id).await?;
    change(&mut w)?;
    w.id = id;
    w.word = w.word.trim().to_string();
    w.validate()?;
    let saved = ctx
        .sensitive_words
        .update_sensitive_word(&w)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(saved)
}

/// Deletes rule `id`.
pub async fn delete(ctx: &AppContext, id: i64) -> Result<(), AdminError> {
    ctx.sensitive_words
        .delete_sensitive_word(id)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(())
}
