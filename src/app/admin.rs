//! Admin use cases: validated create/read/update/delete of providers, users, keys and prices.
//! Every successful write refreshes the in-memory snapshot so the proxy sees it at once.

use std::sync::Arc;

use crate::domain::api_key::{self, ApiKey};
use crate::domain::error::ValidationError;
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::user::User;
use crate::ports::clock::Clock;
use crate::ports::store::{ConfigStore, StoreError};

use super::snapshot::SnapshotHolder;

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

/// The admin service, shared by the HTTP admin API and later the UI.
pub struct AdminService {
    store: Arc<dyn ConfigStore>,
    snapshot: Arc<SnapshotHolder>,
    clock: Arc<dyn Clock>,
}

impl AdminService {
    /// Builds the service over a store and the snapshot it keeps fresh.
    pub fn new(
        store: Arc<dyn ConfigStore>,
        snapshot: Arc<SnapshotHolder>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            snapshot,
            clock,
        }
    }

    /// The current time, for callers building new entities.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
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
        self.refresh().await;
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
        self.refresh().await;
        Ok(saved)
    }

    /// Deletes a provider.
    pub async fn delete_provider(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_provider(id)
            .await
            .map_err(|e| AdminError::from_store(e, "provider"))?;
        self.refresh().await;
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
        self.refresh().await;
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
        self.refresh().await;
        Ok(saved)
    }

    /// Deletes a user and their keys.
    pub async fn delete_user(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_user(id)
            .await
            .map_err(|e| AdminError::from_store(e, "user"))?;
        self.refresh().await;
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
        self.refresh().await;
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
        self.refresh().await;
        Ok(saved)
    }

    /// Deletes a key.
    pub async fn delete_key(&self, id: i64) -> AdminResult<()> {
        self.store
            .delete_key(id)
            .await
            .map_err(|e| AdminError::from_store(e, "key"))?;
        self.refresh().await;
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
