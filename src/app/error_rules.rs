//! Admin use cases for error rules: validated CRUD and restoring the shipped presets. Every
//! write reloads the snapshot, and the periodic refresh carries it to the other instances.

use crate::domain::failure::{PRESET_PRIORITY, StoredErrorRule, builtin_error_rules};
use crate::ports::store::StoreError;

use super::admin::AdminError;
use super::context::AppContext;

fn store_err(e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound => AdminError::NotFound("error rule"),
        StoreError::Conflict(m) => AdminError::Conflict(m),
        StoreError::InvalidReference(m) | StoreError::Unavailable(m) | StoreError::Corrupt(m) => {
            AdminError::Unavailable(m)
        }
    }
}

async fn reload(ctx: &AppContext) {
    if let Err(e) = ctx.snapshot.reload(ctx.clock.now()).await {
        tracing::warn!(error = %e, "snapshot reload after an error-rule write failed; the periodic refresh will retry");
    }
}

/// Every rule, in matching order.
pub async fn list(ctx: &AppContext) -> Result<Vec<StoredErrorRule>, AdminError> {
    ctx.config_store.list_error_rules().await.map_err(store_err)
}

/// Validates and stores a new rule (never a preset).
pub async fn create(
    ctx: &AppContext,
    mut r: StoredErrorRule,
) -> Result<StoredErrorRule, AdminError> {
    r.rule.validate()?;
    r.id = 0;
    r.is_preset = false;
    let saved = ctx
        .config_store
        .insert_error_rule(&r)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(saved)
}

/// Applies `change` to rule `id`, validates and stores it.
pub async fn patch(
    ctx: &AppContext,
    id: i64,
    change: impl FnOnce(&mut StoredErrorRule) -> Result<(), crate::domain::error::ValidationError>,
) -> Result<StoredErrorRule, AdminError> {
    let mut r = list(ctx)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(AdminError::NotFound("error rule"))?;
    change(&mut r)?;
    r.id = id;
    r.rule.validate()?;
    let saved = ctx
        .config_store
        .update_error_rule(&r)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(saved)
}

/// Deletes rule `id` (presets too; they can be restored).
pub async fn delete(ctx: &AppContext, id: i64) -> Result<(), AdminError> {
    ctx.config_store
        .delete_error_rule(id)
        .await
        .map_err(store_err)?;
    reload(ctx).await;
    Ok(())
}

/// Puts every shipped preset back as shipped: missing ones are re-created, edited or disabled
/// ones reset. Admin rules are left alone. Returns the full list.
pub async fn restore_presets(ctx: &AppContext) -> Result<Vec<StoredErrorRule>, AdminError> {
    let existing: Vec<StoredErrorRule> = list(ctx)
        .await?
        .into_iter()
        .filter(|r| r.is_preset)
        .collect();
    for preset in builtin_error_rules() {
        let shipped = StoredErrorRule {
            id: 0,
            rule: preset.clone(),
            description: String::new(),
            enabled: true,
            is_preset: true,
            priority: PRESET_PRIORITY,
        };
        let same = existing
            .iter()
            .find(|r| r.rule.pattern == preset.pattern && r.rule.status == preset.status);
        match same {
            Some(r)
                if *r
                    == StoredErrorRule {
                        id: r.id,
                        ..shipped.clone()
                    } => {}
            Some(r) => {
                let fixed = StoredErrorRule {
                    id: r.id,
                    ..shipped
                };
                ctx.config_store
                    .update_error_rule(&fixed)
                    .await
                    .map_err(store_err)?;
            }
            None => {
                ctx.config_store
                    .insert_error_rule(&shipped)
                    .await
                    .map_err(store_err)?;
            }
        }
    }
    reload(ctx).await;
    list(ctx).await
}
