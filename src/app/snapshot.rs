//! The in-memory configuration snapshot: providers, users, keys (by hash), prices and
//! settings. The proxy reads it without touching the database; admin writes and a periodic
//! refresh replace it atomically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::domain::api_key::ApiKey;
use crate::domain::cost::default_prices;
use crate::domain::failure::{ErrorRuleSet, active_rules};
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::sensitive_words::WordSet;
use crate::domain::user::User;
use crate::ports::sensitive_words::SensitiveWordStore;
use crate::ports::store::{ConfigStore, StoreError, StoreResult};

/// One consistent view of the configuration.
#[derive(Debug, Default, Clone)]
pub struct ConfigSnapshot {
    /// Providers ordered by id.
    pub providers: Vec<Provider>,
    /// Users by id.
    pub users: HashMap<i64, Arc<User>>,
    /// Keys by SHA-256 hex of the plaintext.
    pub keys_by_hash: HashMap<String, Arc<ApiKey>>,
    /// The same keys by id (spend recording and usage look keys up by id).
    pub keys_by_id: HashMap<i64, Arc<ApiKey>>,
    /// Prices: the built-in defaults overridden and extended by the admin's table.
    pub prices: Arc<Vec<ModelPrice>>,
    /// Settings by name.
    pub settings: HashMap<String, serde_json::Value>,
    /// The enabled error rules, compiled (regexes built once per snapshot).
    pub error_rules: Arc<ErrorRuleSet>,
    /// The enabled sensitive-word rules, compiled once per snapshot (empty when none).
    pub sensitive_words: Arc<WordSet>,
    /// When this snapshot was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// The database's configuration version read before the tables (`None` when unknown):
    /// a refresh that reads the same version skips the reload.
    pub version: Option<i64>,
}

impl ConfigSnapshot {
    /// The provider with this id.
    pub fn provider(&self, id: i64) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// A configuration entity written through this instance (see [`SnapshotHolder::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// A provider was created, changed or deleted.
    Provider(i64),
    /// A user was created, changed or deleted (with their keys).
    User(i64),
    /// A key was created, changed or deleted.
    Key(i64),
}

/// Holds the current snapshot and knows how to rebuild it from the store.
pub struct SnapshotHolder {
    current: ArcSwap<ConfigSnapshot>,
    store: Arc<dyn ConfigStore>,
    words: Option<Arc<dyn SensitiveWordStore>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl SnapshotHolder {
    /// Loads the first snapshot; fails when the database cannot be read.
    pub async fn load(store: Arc<dyn ConfigStore>, now: DateTime<Utc>) -> StoreResult<Arc<Self>> {
        Self::load_with_words(store, None, now).await
    }

    /// Like [`Self::load`], with the sensitive-word rules read from `words` into every snapshot.
    pub async fn load_with_words(
        store: Arc<dyn ConfigStore>,
        words: Option<Arc<dyn SensitiveWordStore>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Arc<Self>> {
        let snapshot = build(store.as_ref(), words.as_deref(), None, now).await?;
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(snapshot),
            store,
            words,
            reload_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// The current snapshot (cheap: an atomic pointer load).
    pub fn get(&self) -> Arc<ConfigSnapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot from the store and swaps it in. Reloads are serialised so an
    /// older read can never replace a newer one.
    pub async fn reload(&self, now: DateTime<Utc>) -> StoreResult<()> {
        let _guard = self.reload_lock.lock().await;
        let previous = self.current.load_full();
        let snapshot = build(
            self.store.as_ref(),
            self.words.as_deref(),
            Some(&previous),
            now,
        )
        .await?;
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// Puts one entity's stored state into the snapshot, or takes it out when it is gone, so
    /// this instance serves its own admin write at once without reading every table again
    /// (with 10,000 users and 30,000 keys a full reload takes most of a second). The version
    /// moves with it only when that write was the only change since the snapshot was loaded;
    /// otherwise the next periodic refresh reloads everything.
    pub async fn apply(&self, changed: Changed) -> StoreResult<()> {
        let _guard = self.reload_lock.lock().await;
        let after = self.store.config_version().await.ok();
        let current = self.current.load_full();
        let mut next = ConfigSnapshot::clone(&current);
        match changed {
            Changed::Provider(id) => {
                next.providers.retain(|p| p.id != id);
                if let Some(p) = found(self.store.get_provider(id).await)? {
                    let at = next.providers.partition_point(|q| q.id < id);
                    next.providers.insert(at, p);
                }
            }
            Changed::User(id) => match found(self.store.get_user(id).await)? {
                Some(u) => {
                    next.users.insert(id, Arc::new(u));
                }
                None => {
                    next.users.remove(&id);
                    next.keys_by_id.retain(|_, k| k.user_id != id);
                    next.keys_by_hash.retain(|_, k| k.user_id != id);
                }
            },
            Changed::Key(id) => {
                if let Some(old) = next.keys_by_id.remove(&id) {
                    next.keys_by_hash.remove(&old.key_hash);
                }
                if let Some(k) = found(self.store.get_key(id).await)? {
                    let k = Arc::new(k);
                    next.keys_by_hash.insert(k.key_hash.clone(), Arc::clone(&k));
                    next.keys_by_id.insert(id, k);
                }
            }
        }
        next.version = match (current.version, after) {
            (Some(before), Some(after)) if after == before + 1 => Some(after),
            (before, _) => before,
        };
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// Reloads when the database's configuration version moved since this snapshot (one
    /// one-row read otherwise), or always when `force`; true when it reloaded.
    pub async fn refresh(&self, now: DateTime<Utc>, force: bool) -> StoreResult<bool> {
        if !force {
            let current = self.current.load().version;
            if let (Ok(v), Some(c)) = (self.store.config_version().await, current)
                && v == c
            {
                return Ok(false);
            }
        }
        self.reload(now).await.map(|()| true)
    }

    /// Checks every `interval` until `shutdown` fires, so instances converge on changes made
    /// through another instance: a reload when the configuration version moved, and a full one
    /// at least every `FORCED_RELOAD_EVERY` checks whatever it says (a write that bypassed the
    /// triggers). A failed reload keeps the last good snapshot.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        interval: Duration,
        clock: Arc<dyn crate::ports::clock::Clock>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let holder = Arc::clone(self);
        tokio::spawn(async move {
            let (mut failing, mut checks) = (false, 0_u32);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
                checks = (checks + 1) % FORCED_RELOAD_EVERY;
                match holder.refresh(clock.now(), checks == 0).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("config refresh recovered");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "config refresh failed; serving the last snapshot");
                    }
                    Err(_) => {}
                }
            }
        })
    }
}

/// `Some` for a found entity, `None` for a deleted one.
fn found<T>(r: StoreResult<T>) -> StoreResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every this many refresh checks, the snapshot is reloaded even if the version did not move
/// (5 minutes at the default 5-second interval).
const FORCED_RELOAD_EVERY: u32 = 60;

async fn build(
    store: &dyn ConfigStore,
    words: Option<&dyn SensitiveWordStore>,
    previous: Option<&ConfigSnapshot>,
    now: DateTime<Utc>,
) -> StoreResult<ConfigSnapshot> {
    // Read first: a write landing while the tables are read moves it again, so the next
    // refresh reloads.
    let version = store.config_version().await.ok();
    let providers = store.list_providers().await?;
    let users = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id, Arc::new(u)))
        .collect();
    let keys: Vec<Arc<ApiKey>> = store.list_keys().await?.into_iter().map(Arc::new).collect();
    let keys_by_id = keys.iter().map(|k| (k.id, Arc::clone(k))).collect();
    let keys_by_hash = keys.into_iter().map(|k| (k.key_hash.clone(), k)).collect();
    let mut merged: HashMap<String, ModelPrice> = default_prices()
        .into_iter()
        .map(|p| (p.model.clone(), p))
        .collect();
    for p in store.list_prices().await? {
        merged.insert(p.model.clone(), p);
    }
    let mut prices: Vec<ModelPrice> = merged.into_values().collect();
    prices.sort_by(|a, b| a.model.cmp(&b.model));
    let prices = Arc::new(prices);
    let settings = store
        .list_settings()
        .await?
        .into_iter()
        .map(|s| (s.key, s.value))
        .collect();
    let (error_rules, bad) =
        ErrorRuleSet::compile_reporting(active_rules(&store.list_error_rules().await?));
    if !bad.is_empty() {
        tracing::warn!(patterns = ?bad, "error rules with an invalid regex are ignored");
    }
    let sensitive_words = match words {
        Some(w) => {
            let rules = w.list_sensitive_words().await?;
            match previous.filter(|p| p.sensitive_words.compiled_from(&rules)) {
                // Unchanged rules keep their compiled set (and the proxy its cache of text
                // found clean against it).
                Some(p) => Arc::clone(&p.sensitive_words),
                None => {
                    let (set, bad) = WordSet::compile(&rules);
                    if !bad.is_empty() {
                        tracing::warn!(rules = ?bad, "sensitive-word rules that do not compile are ignored");
                    }
                    Arc::new(set)
                }
            }
        }
        None => Arc::new(WordSet::default()),
    };
    Ok(ConfigSnapshot {
        error_rules: Arc::new(error_rules),
        sensitive_words,
        providers,
        users,
        keys_by_hash,
        keys_by_id,
        prices,
        settings,
        loaded_at: Some(now),
        version,
    })
}
