//! The storage ports with secrets sealed at rest: decorators around any `ConfigStore` and
//! `NotificationStore` (SQLite and PostgreSQL alike) that seal provider API keys and proxy
//! URLs, and webhook URLs, secrets and custom header values, on the way in, and open them on
//! the way out (`secret_box`). Each value is bound to its table, column and row id, so a new
//! row is written in two steps: inserted without its secrets to learn its id, then updated
//! with them sealed (the row is removed again if that second step fails).
//!
//! [`verify_and_seal_plaintext`] runs at startup: it refuses to go on when any stored value was
//! sealed with a key this process does not hold (before anything is written), then seals the
//! values still stored in plaintext. [`reseal_all`] re-seals everything under a new key
//! (`cch rotate-secret-key`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::api_key::ApiKey;
use crate::domain::failure::StoredErrorRule;
use crate::domain::notify::Notice;
use crate::domain::notify::target::Target;
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::settings::SystemSetting;
use crate::domain::user::User;
use crate::ports::notifications::{Delivery, NotificationStore, OutboxItem, Outcome};
use crate::ports::store::{ConfigStore, StoreError, StoreResult};

use super::secret_box::{Keyring, SealError, is_sealed};

/// Where a provider's key is sealed (the associated data names the column and the row).
const API_KEY_PLACE: &str = "providers.api_key";

fn corrupt(e: SealError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// How a provider's or target's secret fields are sealed and opened, field by field.
trait Secrets: Clone {
    fn id(&self) -> i64;
    /// Applies `f(place, value)` to every secret value (place is `table.column` plus a
    /// discriminator where a row has several values in one column).
    fn map_secrets(
        &self,
        f: &mut dyn FnMut(&str, &str) -> Result<String, SealError>,
    ) -> Result<Self, SealError>;
    /// A copy with every secret emptied (the first step of an insert).
    fn without_secrets(&self) -> Self;
    /// Every stored secret value, for checks.
    fn stored_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let _ = self.map_secrets(&mut |_, v| {
            out.push(v.to_string());
            Ok(v.to_string())
        });
        out
    }
}

impl Secrets for Provider {
    fn id(&self) -> i64 {
        self.id
    }
    fn map_secrets(
        &self,
        f: &mut dyn FnMut(&str, &str) -> Result<String, SealError>,
    ) -> Result<Self, SealError> {
        let mut p = self.clone();
        if !p.api_key.is_empty() {
            p.api_key = f(API_KEY_PLACE, &p.api_key)?;
        }
        if let Some(u) = p.proxy_url.as_deref().filter(|u| !u.is_empty()) {
            p.proxy_url = Some(f("providers.proxy_url", u)?);
        }
        for (name, value) in &mut p.shaping.custom_headers {
            *value = f(&format!("providers.header.{name}"), value)?;
        }
        Ok(p)
    }
    fn without_secrets(&self) -> Self {
        let mut p = Self {
            api_key: String::new(),
            proxy_url: None,
            ..self.clone()
        };
        for v in p.shaping.custom_headers.values_mut() {
            v.clear();
        }
        p
    }
}

impl Secrets for Target {
    fn id(&self) -> i64 {
        self.id
    }
    fn map_secrets(
        &self,
        f: &mut dyn FnMut(&str, &str) -> Result<String, SealError>,
    ) -> Result<Self, SealError> {
        let mut t = self.clone();
        if !t.url.is_empty() {
            t.url = f("notification_targets.url", &t.url)?;
        }
        if let Some(s) = t.secret.as_deref().filter(|s| !s.is_empty()) {
            t.secret = Some(f("notification_targets.secret", s)?);
        }
        for (name, value) in &mut t.options.headers {
            let place = format!("notification_targets.header.{}", name.to_ascii_lowercase());
            *value = f(&place, value)?;
        }
        Ok(t)
    }
    fn without_secrets(&self) -> Self {
        let mut t = self.clone();
        t.url = String::new();
        t.secret = None;
        for (_, v) in &mut t.options.headers {
            v.clear();
        }
        t
    }
}

fn seal<T: Secrets>(keys: &Keyring, v: &T) -> T {
    let id = v.id();
    v.map_secrets(&mut |place, value| {
        if is_sealed(value) {
            Ok(value.to_string())
        } else {
            Ok(keys.seal(value, &format!("{place}:{id}")))
        }
    })
    .unwrap_or_else(|_| v.without_secrets())
}

fn open<T: Secrets>(keys: &Keyring, v: T) -> StoreResult<T> {
    let id = v.id();
    v.map_secrets(&mut |place, value| keys.open(value, &format!("{place}:{id}")))
        .map_err(corrupt)
}

/// A `ConfigStore` whose provider secrets are sealed at rest.
pub struct SealedConfigStore {
    inner: Arc<dyn ConfigStore>,
    keys: Arc<Keyring>,
}

impl SealedConfigStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ConfigStore>, keys: Arc<Keyring>) -> Self {
        Self { inner, keys }
    }
}

#[async_trait]
impl ConfigStore for SealedConfigStore {
    async fn list_providers(&self) -> StoreResult<Vec<Provider>> {
        self.inner
            .list_providers()
            .await?
            .into_iter()
            .map(|p| open(&self.keys, p))
            .collect()
    }
    async fn get_provider(&self, id: i64) -> StoreResult<Provider> {
        open(&self.keys, self.inner.get_provider(id).await?)
    }
    async fn insert_provider(&self, p: &Provider) -> StoreResult<Provider> {
        let draft = self.inner.insert_provider(&p.without_secrets()).await?;
        let full = Provider {
            id: draft.id,
            created_at: draft.created_at,
            updated_at: draft.updated_at,
            ..p.clone()
        };
        match self.inner.update_provider(&seal(&self.keys, &full)).await {
            Ok(saved) => open(&self.keys, saved),
            Err(e) => {
                if let Err(d) = self.inner.delete_provider(draft.id).await {
                    tracing::warn!(error = %d, id = draft.id, "a provider left without its key could not be removed");
                }
                Err(e)
            }
        }
    }
    async fn update_provider(&self, p: &Provider) -> StoreResult<Provider> {
        open(
            &self.keys,
            self.inner.update_provider(&seal(&self.keys, p)).await?,
        )
    }
    async fn delete_provider(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_provider(id).await
    }
    async fn set_provider_api_key(&self, id: i64, api_key: &str) -> StoreResult<()> {
        let sealed = self.keys.seal(api_key, &format!("{API_KEY_PLACE}:{id}"));
        self.inner.set_provider_api_key(id, &sealed).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn get_user(&self, id: i64) -> StoreResult<User> {
        self.inner.get_user(id).await
    }
    async fn insert_user(&self, u: &User) -> StoreResult<User> {
        self.inner.insert_user(u).await
    }
    async fn update_user(&self, u: &User) -> StoreResult<User> {
        self.inner.update_user(u).await
    }
    async fn delete_user(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_user(id).await
    }
    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.inner.list_keys().await
    }
    async fn list_user_keys(&self, user_id: i64) -> StoreResult<Vec<ApiKey>> {
        self.inner.list_user_keys(user_id).await
    }
    async fn get_key(&self, id: i64) -> StoreResult<ApiKey> {
        self.inner.get_key(id).await
    }
    async fn insert_key(&self, k: &ApiKey) -> StoreResult<ApiKey> {
        self.inner.insert_key(k).await
    }
    async fn update_key(&self, k: &ApiKey) -> StoreResult<ApiKey> {
        self.inner.update_key(k).await
    }
    async fn delete_key(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_key(id).await
    }
    async fn list_prices(&self) -> StoreResult<Vec<ModelPrice>> {
        self.inner.list_prices().await
    }
    async fn upsert_price(&self, p: &ModelPrice) -> StoreResult<ModelPrice> {
        self.inner.upsert_price(p).await
    }
    async fn delete_price(&self, model: &str) -> StoreResult<()> {
        self.inner.delete_price(model).await
    }
    async fn config_version(&self) -> StoreResult<i64> {
        self.inner.config_version().await
    }
    async fn list_settings(&self) -> StoreResult<Vec<SystemSetting>> {
        self.inner.list_settings().await
    }
    async fn put_setting(&self, s: &SystemSetting) -> StoreResult<()> {
        self.inner.put_setting(s).await
    }
    async fn list_error_rules(&self) -> StoreResult<Vec<StoredErrorRule>> {
        self.inner.list_error_rules().await
    }
    async fn insert_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
        self.inner.insert_error_rule(r).await
    }
    async fn update_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
        self.inner.update_error_rule(r).await
    }
    async fn delete_error_rule(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_error_rule(id).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

/// A `NotificationStore` whose target URLs, secrets and header values are sealed at rest.
pub struct SealedNotificationStore {
    inner: Arc<dyn NotificationStore>,
    keys: Arc<Keyring>,
}

impl SealedNotificationStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn NotificationStore>, keys: Arc<Keyring>) -> Self {
        Self { inner, keys }
    }
}

#[async_trait]
impl NotificationStore for SealedNotificationStore {
    async fn list_targets(&self) -> StoreResult<Vec<Target>> {
        self.inner
            .list_targets()
            .await?
            .into_iter()
            .map(|t| open(&self.keys, t))
            .collect()
    }
    async fn get_target(&self, id: i64) -> StoreResult<Target> {
        open(&self.keys, self.inner.get_target(id).await?)
    }
    async fn insert_target(&self, t: &Target, now: DateTime<Utc>) -> StoreResult<Target> {
        let draft = self.inner.insert_target(&t.without_secrets(), now).await?;
        let full = Target {
            id: draft.id,
            ..t.clone()
        };
        match self
            .inner
            .update_target(&seal(&self.keys, &full), now)
            .await
        {
            Ok(saved) => open(&self.keys, saved),
            Err(e) => {
                if let Err(d) = self.inner.delete_target(draft.id).await {
                    tracing::warn!(error = %d, id = draft.id, "a target left without its URL could not be removed");
                }
                Err(e)
            }
        }
    }
    async fn update_target(&self, t: &Target, now: DateTime<Utc>) -> StoreResult<Target> {
        open(
            &self.keys,
            self.inner.update_target(&seal(&self.keys, t), now).await?,
        )
    }
    async fn delete_target(&self, id: i64) -> StoreResult<()> {
        self.inner.delete_target(id).await
    }
    async fn enqueue(
        &self,
        target_id: i64,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.enqueue(target_id, notice, now).await
    }
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.inner.claim_due(now, lease_until, limit).await
    }
    async fn last_delivered(
        &self,
        target_id: i64,
        coalesce_key: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.last_delivered(target_id, coalesce_key).await
    }
    async fn defer(&self, item: &OutboxItem, until: DateTime<Utc>) -> StoreResult<()> {
        self.inner.defer(item, until).await
    }
    async fn finish(&self, item: &OutboxItem, outcome: Outcome, log: &Delivery) -> StoreResult<()> {
        self.inner.finish(item, outcome, log).await
    }
    async fn log_delivery(&self, log: &Delivery) -> StoreResult<()> {
        self.inner.log_delivery(log).await
    }
    async fn list_deliveries(
        &self,
        target_id: Option<i64>,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner
            .list_deliveries(target_id, before_id, limit)
            .await
    }
    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.prune_notifications(before).await
    }
}

/// What [`verify_and_seal_plaintext`] and [`reseal_all`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SealReport {
    /// Providers rewritten.
    pub providers: usize,
    /// Notification targets rewritten.
    pub targets: usize,
}

/// Why the stored secrets cannot be used with the configured keys.
#[derive(Debug, thiserror::Error)]
pub enum SealCheckError {
    /// A value was sealed with a key that is not configured (or it does not open).
    #[error(
        "{what} cannot be decrypted: {source}. The secret key configured now (key id {configured}) \
         is not the one these secrets were sealed with: start with the right CCH_SECRET_KEY (or \
         the right `secret_key` file in the data folder), or list the old key in \
         CCH_SECRET_KEY_OLD. Nothing was changed."
    )]
    WrongKey {
        /// The row.
        what: String,
        /// The key id configured.
        configured: String,
        /// Why it did not open.
        source: SealError,
    },
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

fn check_opens<T: Secrets>(keys: &Keyring, rows: &[T], what: &str) -> Result<(), SealCheckError> {
    for r in rows {
        open(keys, r.clone()).map_err(|_| {
            // Re-run to keep the precise reason.
            let reason = r
                .map_secrets(&mut |place, v| keys.open(v, &format!("{place}:{}", r.id())))
                .err()
                .unwrap_or(SealError::Corrupt("unknown"));
            SealCheckError::WrongKey {
                what: format!("{what} {}", r.id()),
                configured: keys.primary_id().to_string(),
                source: reason,
            }
        })?;
    }
    Ok(())
}

async fn rewrite(
    config: &dyn ConfigStore,
    notify: &dyn NotificationStore,
    open_with: &Keyring,
    seal_with: &Keyring,
    only_plaintext: bool,
    now: DateTime<Utc>,
) -> Result<SealReport, SealCheckError> {
    let providers = config.list_providers().await?;
    let targets = notify.list_targets().await?;
    // Every value must open before anything is written.
    check_opens(open_with, &providers, "provider")?;
    check_opens(open_with, &targets, "notification target")?;
    let mut report = SealReport::default();
    let needs = |stored: Vec<String>| {
        stored.iter().any(|v| {
            if only_plaintext {
                !is_sealed(v)
            } else {
                Keyring::key_id_of(v) != Some(seal_with.primary_id())
            }
        })
    };
    for p in providers {
        if needs(p.stored_secrets()) {
            let plain = open(open_with, p)?;
            config.update_provider(&seal(seal_with, &plain)).await?;
            report.providers += 1;
        }
    }
    for t in targets {
        if needs(t.stored_secrets()) {
            let plain = open(open_with, t)?;
            notify.update_target(&seal(seal_with, &plain), now).await?;
            report.targets += 1;
        }
    }
    Ok(report)
}

/// At startup, on the raw (unsealed) stores: fails, writing nothing, when any stored secret
/// does not open with `keys`; then seals every secret still stored in plaintext.
pub async fn verify_and_seal_plaintext(
    config: &dyn ConfigStore,
    notify: &dyn NotificationStore,
    keys: &Keyring,
    now: DateTime<Utc>,
) -> Result<SealReport, SealCheckError> {
    rewrite(config, notify, keys, keys, true, now).await
}

/// Re-seals every secret with `new`'s sealing key, opening them with `new` (which must also
/// hold the old keys). Values already under the new key are left alone, so an interrupted
/// rotation can simply be run again.
pub async fn reseal_all(
    config: &dyn ConfigStore,
    notify: &dyn NotificationStore,
    new: &Keyring,
    now: DateTime<Utc>,
) -> Result<SealReport, SealCheckError> {
    rewrite(config, notify, new, new, false, now).await
}
