//! Admin use cases: validated create/read/update/delete of providers, users, keys and prices,
//! and reading request logs. Every successful write refreshes the in-memory snapshot so the
//! proxy sees it at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::api_key::{self, ApiKey};
use crate::domain::cost::{default_prices, parse_litellm_prices};
use crate::domain::error::ValidationError;
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::request_log::{LogFilter, RequestLog};
use crate::domain::user::User;
use crate::ports::clock::Clock;
use crate::ports::store::{ConfigStore, RequestLogStore, StoreError};

use super::snapshot::{Changed, SnapshotHolder};

/// Why an admin operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input breaks a rule; names the field.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// No such entity.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The database failed; nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl AdminError {
    fn from_store(e: StoreError, entity: &'static str) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound(entity),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::InvalidReference(m) => Self::Validation(ValidationError::new("id", m)),
            StoreError::Unavailable(m) | StoreError::Corrupt(m) => Self::Unavailable(m),
        }
    }
}

/// Result of an admin operation.
pub type AdminResult<T> = Result<T, AdminError>;

/// A newly created key: the stored record and the plaintext, which is never available again.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored key (hash only).
    pub key: ApiKey,
    /// The plaintext `cch_…` key.
    pub plaintext: String,
}

/// Default page size when listing request logs.
pub const DEFAULT_LOG_PAGE: i64 = 50;
/// Largest page size when listing request logs.
pub const MAX_LOG_PAGE: i64 = 1000;

/// What an admin asks of the request logs; every filter optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this user.
    pub user_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this provider.
    pub provider_id: Option<i64>,
    /// Requested or forwarded model equals this.
    pub model: Option<String>,
    /// 2, 4 or 5 (2xx, 4xx, 5xx).
    pub status_class: Option<i32>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Page size, 1 to [`MAX_LOG_PAGE`] (default [`DEFAULT_LOG_PAGE`]).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of request logs, newest first.
#[derive(Debug, Clone)]
pub struct LogPage {
    /// The rows.
    pub rows: Vec<RequestLog>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Where an effective price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The built-in table.
    Default,
    /// Stored by an admin (overrides a default of the same name).
    Custom,
}

impl PriceSource {
    /// `default` or `custom`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Custom => "custom",
        }
    }
}

/// Outcome of a LiteLLM price import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Prices stored (created or replaced).
    pub imported: usize,
    /// Entries without a usable input and output price (`sample_spec` is not counted).
    pub skipped: usize,
}

/// Turns a caller-supplied empty string into "no filter".
fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl LogQuery {
    /// Checks the query and turns it into a storage filter (asking for one extra row, to know
    /// whether another page follows). Returns the filter and the page size.
    fn into_filter(self) -> Result<(LogFilter, i64), ValidationError> {
        if let Some(c) = self.status_class
            && !matches!(c, 2 | 4 | 5)
        {
            return Err(ValidationError::new("status_class", "must be 2, 4 or 5"));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LOG_PAGE);
        if !(1..=MAX_LOG_PAGE).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                format!("must be between 1 and {MAX_LOG_PAGE}"),
            ));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            return Err(ValidationError::new("to", "must be after `from`"));
        }
        let before_id = match non_empty(self.cursor) {
            None => None,
            Some(c) => match c.parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    return Err(ValidationError::new(
                        "cursor",
                        "is not a cursor returned by this API",
                    ));
                }
            },
        };
        let filter = LogFilter {
            user_id: self.user_id,
            key_id: self.key_id,
            provider_id: self.provider_id,
            model: non_empty(self.model),
            status_class: self.status_class,
            from: self.from,
            to: self.to,
            session_id: non_empty(self.session_id),
            before_id,
            limit: (limit + 1).min(MAX_LOG_PAGE),
        };
        Ok((filter, limit))
    }
}

/// The admin service, shared by the HTTP admin API and later the UI.
pub struct AdminService {
    store: Arc<dyn ConfigStore>,
    logs: Arc<dyn RequestLogStore>,
    snapshot: Arc<SnapshotHolder>,
    clock: Arc<dyn Clock>,
}

impl AdminService {
    /// Builds the service over the stores and the snapshot it keeps fresh.
    pub fn new(
        store: Arc<dyn ConfigStore>,
        logs: Arc<dyn RequestLogStore>,
        snapshot: Arc<SnapshotHolder>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            logs,
            snapshot,
            clock,
        }
    }

    /// Request logs matching `query`, newest first, one page at a time.
    pub async fn list_logs(&self, query: LogQuery) -> AdminResult<LogPage> {
        let (filter, limit) = query.into_filter()?;
        let mut rows = self
            .logs
            .list_logs(&filter)
            .await
            .map_err(|e| AdminError::from_store(e, "log"))?;
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        // One extra row was asked for; at the largest page size the store caps the count, so a
        // full page may be followed by an empty one.
        let more = rows.len() > page || (limit == MAX_LOG_PAGE && rows.len() == page);
        rows.truncate(page);
        let next_cursor = if more {
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(LogPage { rows, next_cursor })
    }

    /// One request log.
    pub async fn get_log(&self, id: i64) -> AdminResult<RequestLog> {
        self.logs
            .get_log(id)
            .await
            .map_err(|e| AdminError::from_store(e, "log"))
    }

    /// The current time, for callers building new entities.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Shows one entity written here in this instance's snapshot at once (see
    /// `SnapshotHolder::apply`); the periodic refresh catches up if that fails.
    async fn changed(&self, changed: Changed) {
        if let Err(e) = self.snapshot.apply(changed).await {
            tracing::warn!(error = %e, "snapshot update after an admin write failed; the periodic refresh will retry");
        }
    }

    async fn refresh(&self) {
        if let Err(e) = self.snapshot.reload(self.clock.now()).await {
            tracing::warn!(error = %e, "snapshot reload after an admin write failed; the periodic refresh will retry");
        }
    }

    /// All providers.
    pub async fn list_providers(&self) -> AdminResult<Vec<Provider>> {
        self.store
            .list_providers()
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))
    }

    /// One provider.
    pub async fn get_provider(&self, id: i64) -> AdminResult<Provider> {
        self.store
            .get_provider(id)
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))
    }

    /// Validates and stores a new provider.
    pub async fn create_provider(&self, mut p: Provider) -> AdminResult<Provider> {
        let now = self.clock.now();
        p.created_at = now;
        p.updated_at = now;
        p.validate()?;
        let saved = self
            .store
            .insert_provider(&p)
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))?;
        self.changed(Changed::Provider(saved.id)).await;
        Ok(saved)
    }

    /// Applies a change to a provider, validates the result and stores it.
    pub async fn patch_provider(
        &self,
        id: i64,
        change: impl FnOnce(&mut Provider) -> Result<(), ValidationError>,
    ) -> AdminResult<Provider> {
        let mut p = self.get_provider(id).await?;
        change(&mut p)?;
        p.id = id;
        p.updated_at = self.clock.now();
        p.validate()?;
        let saved = self
            .store
            .update_provider(&p)
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))?;
        self.changed(Changed::Provider(id)).await;
        Ok(saved)
    }

    /// Deletes a provider.
    pub async fn delete_provider(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_provider(id)
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))?;
        self.changed(Changed::Provider(id)).await;
        Ok(())
    }

    /// All users.
    pub async fn list_users(&self) -> AdminResult<Vec<User>> {
        self.store
            .list_users()
            .await
            .map_err(|e| AdminError::from_store(e, "user"))
    }

    /// One user.
    pub async fn get_user(&self, id: i64) -> AdminResult<User> {
        self.store
            .get_user(id)
            .await
            .map_err(|e| AdminError::from_store(e, "user"))
    }

    /// Validates and stores a new user.
    pub async fn create_user(&self, mut u: User) -> AdminResult<User> {
        let now = self.clock.now();
        u.created_at = now;
        u.updated_at = now;
        u.validate()?;
        let saved = self
            .store
            .insert_user(&u)
            .await
            .map_err(|e| AdminError::from_store(e, "user"))?;
        self.changed(Changed::User(saved.id)).await;
        Ok(saved)
    }

    /// Applies a change to a user, validates the result and stores it.
    pub async fn patch_user(
        &self,
        id: i64,
        change: impl FnOnce(&mut User) -> Result<(), ValidationError>,
    ) -> AdminResult<User> {
        let mut u = self.get_user(id).await?;
        change(&mut u)?;
        u.id = id;
        u.updated_at = self.clock.now();
        u.validate()?;
        let saved = self
            .store
            .update_user(&u)
            .await
            .map_err(|e| AdminError::from_store(e, "user"))?;
        self.changed(Changed::User(id)).await;
        Ok(saved)
    }

    /// Deletes a user and their keys.
    pub async fn delete_user(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_user(id)
            .await
            .map_err(|e| AdminError::from_store(e, "user"))?;
        self.changed(Changed::User(id)).await;
        Ok(())
    }

    /// Keys of a user (404 when the user does not exist).
    pub async fn list_user_keys(&self, user_id: i64) -> AdminResult<Vec<ApiKey>> {
        self.get_user(user_id).await?;
        self.store
            .list_user_keys(user_id)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))
    }

    /// One key.
    pub async fn get_key(&self, id: i64) -> AdminResult<ApiKey> {
        self.store
            .get_key(id)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))
    }

    /// Creates a key for a user; `template` carries the name, limits and expiry. The plaintext
    /// is returned once and only its hash is stored.
    pub async fn create_key(&self, user_id: i64, mut template: ApiKey) -> AdminResult<CreatedKey> {
        self.get_user(user_id).await?;
        let plaintext = {
            use rand::RngCore;
            let mut rng = rand::rng();
            api_key::generate_key(|| {
                let mut b = [0u8; 1];
                rng.fill_bytes(&mut b);
                b[0]
            })
        };
        let now = self.clock.now();
        template.user_id = user_id;
        template.key_hash = api_key::hash_key(&plaintext);
        template.key_last4 = api_key::last4(&plaintext);
        template.created_at = now;
        template.updated_at = now;
        template.validate()?;
        let key = self
            .store
            .insert_key(&template)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))?;
        self.changed(Changed::Key(key.id)).await;
        Ok(CreatedKey { key, plaintext })
    }

    /// Applies a change to a key (name, enabled, limits, expiry), validates and stores it.
    pub async fn patch_key(
        &self,
        id: i64,
        change: impl FnOnce(&mut ApiKey) -> Result<(), ValidationError>,
    ) -> AdminResult<ApiKey> {
        let mut k = self.get_key(id).await?;
        let (user_id, hash, last4) = (k.user_id, k.key_hash.clone(), k.key_last4.clone());
        change(&mut k)?;
        k.id = id;
        k.user_id = user_id;
        k.key_hash = hash;
        k.key_last4 = last4;
        k.updated_at = self.clock.now();
        k.validate()?;
        let saved = self
            .store
            .update_key(&k)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))?;
        self.changed(Changed::Key(id)).await;
        Ok(saved)
    }

    /// Deletes a key.
    pub async fn delete_key(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_key(id)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))?;
        self.changed(Changed::Key(id)).await;
        Ok(())
    }

    /// All model prices.
    pub async fn list_prices(&self) -> AdminResult<Vec<ModelPrice>> {
        self.store
            .list_prices()
            .await
            .map_err(|e| AdminError::from_store(e, "price"))
    }

    /// Validates and stores (or replaces) a model price.
    pub async fn upsert_price(&self, p: ModelPrice) -> AdminResult<ModelPrice> {
        p.validate()?;
        let saved = self
            .store
            .upsert_price(&p)
            .await
            .map_err(|e| AdminError::from_store(e, "price"))?;
        self.refresh().await;
        Ok(saved)
    }

    /// The price table the proxy uses: built-in defaults overridden by stored prices, ordered
    /// by model, each with where it comes from.
    pub async fn effective_prices(&self) -> AdminResult<Vec<(ModelPrice, PriceSource)>> {
        let mut merged: BTreeMap<String, (ModelPrice, PriceSource)> = default_prices()
            .into_iter()
            .map(|p| (p.model.clone(), (p, PriceSource::Default)))
            .collect();
        for p in self.list_prices().await? {
            merged.insert(p.model.clone(), (p, PriceSource::Custom));
        }
        Ok(merged.into_values().collect())
    }

    /// Imports LiteLLM's `model_prices_and_context_window.json`: every usable entry is stored
    /// (created or replaced), then the snapshot is refreshed once. A storage failure midway
    /// leaves the prices stored so far in place (re-running the import is safe).
    pub async fn import_litellm_prices(
        &self,
        doc: &serde_json::Value,
    ) -> AdminResult<ImportOutcome> {
        let prices =
            parse_litellm_prices(doc).map_err(|e| ValidationError::new("body", e.to_string()))?;
        let entries = doc
            .as_object()
            .map(|m| m.keys().filter(|k| *k != "sample_spec").count())
            .unwrap_or(0);
        // A LiteLLM file always has entries with both token prices; a body with none (`{}`,
        // `{"a": 1}`, a config file sent by mistake) is not a price list, not "0 imported".
        if prices.is_empty() {
            return Err(ValidationError::new(
                "body",
                "is not a LiteLLM price list: no entry has input_cost_per_token and output_cost_per_token",
            )
            .into());
        }
        let mut imported = 0;
        let mut result = Ok(());
        for p in &prices {
            if let Err(e) = self.store.upsert_price(p).await {
                result = Err(AdminError::from_store(e, "price"));
                break;
            }
            imported += 1;
        }
        if imported > 0 {
            self.refresh().await;
        }
        result?;
        Ok(ImportOutcome {
            imported,
            skipped: entries.saturating_sub(imported),
        })
    }

    /// Deletes a model price.
    pub async fn delete_price(&self, model: &str) -> AdminResult<()> {
        self.store
            .delete_price(model)
            .await
            .map_err(|e| AdminError::from_store(e, "price"))?;
        self.refresh().await;
        Ok(())
    }
}
