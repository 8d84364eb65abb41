//! The port implementations for [`SqliteStore`], delegating to one module per table.

use async_trait::async_trait;

use super::{
    SqliteStore, codec, error_rules, keys, logs, prices, providers, settings, stats, users,
};
use crate::domain::api_key::ApiKey;
use crate::domain::failure::StoredErrorRule;
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::request_log::{LogFilter, RequestLog};
use crate::domain::settings::SystemSetting;
use crate::domain::user::User;
use crate::ports::store::{ConfigStore, RequestLogStore, StoreResult};

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn list_providers(&self) -> StoreResult<Vec<Provider>> {
        providers::list(&self.pool).await
    }
    async fn get_provider(&self, id: i64) -> StoreResult<Provider> {
        providers::get(&self.pool, id).await
    }
    async fn insert_provider(&self, p: &Provider) -> StoreResult<Provider> {
        providers::insert(&self.pool, p).await
    }
    async fn update_provider(&self, p: &Provider) -> StoreResult<Provider> {
        providers::update(&self.pool, p).await
    }
    async fn delete_provider(&self, id: i64) -> StoreResult<()> {
        providers::delete(&self.pool, id).await
    }
    async fn set_provider_api_key(&self, id: i64, api_key: &str) -> StoreResult<()> {
        providers::set_api_key(&self.pool, id, api_key).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::list(&self.pool).await
    }
    async fn get_user(&self, id: i64) -> StoreResult<User> {
        users::get(&self.pool, id).await
    }
    async fn insert_user(&self, u: &User) -> StoreResult<User> {
        users::insert(&self.pool, u).await
    }
    async fn update_user(&self, u: &User) -> StoreResult<User> {
        users::update(&self.pool, u).await
    }
    async fn delete_user(&self, id: i64) -> StoreResult<()> {
        users::delete(&self.pool, id).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        keys::list(&self.pool).await
    }
    async fn list_user_keys(&self, user_id: i64) -> StoreResult<Vec<ApiKey>> {
        keys::list_for_user(&self.pool, user_id).await
    }
    async fn get_key(&self, id: i64) -> StoreResult<ApiKey> {
        keys::get(&self.pool, id).await
    }
    async fn insert_key(&self, k: &ApiKey) -> StoreResult<ApiKey> {
        keys::insert(&self.pool, k).await
    }
    async fn update_key(&self, k: &ApiKey) -> StoreResult<ApiKey> {
        keys::update(&self.pool, k).await
    }
    async fn delete_key(&self, id: i64) -> StoreResult<()> {
        keys::delete(&self.pool, id).await
    }

    async fn list_prices(&self) -> StoreResult<Vec<ModelPrice>> {
        prices::list(&self.pool).await
    }
    async fn upsert_price(&self, p: &ModelPrice) -> StoreResult<ModelPrice> {
        prices::upsert(&self.pool, p).await
    }
    async fn delete_price(&self, model: &str) -> StoreResult<()> {
        prices::delete(&self.pool, model).await
    }

    async fn config_version(&self) -> StoreResult<i64> {
        settings::config_version(&self.pool).await
    }
    async fn list_settings(&self) -> StoreResult<Vec<SystemSetting>> {
        settings::list(&self.pool).await
    }
    async fn put_setting(&self, s: &SystemSetting) -> StoreResult<()> {
        settings::put(&self.pool, s).await
    }

    async fn list_error_rules(&self) -> StoreResult<Vec<StoredErrorRule>> {
        error_rules::list(&self.pool).await
    }
    async fn insert_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
        error_rules::insert(&self.pool, r).await
    }
    async fn update_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule> {
        error_rules::update(&self.pool, r).await
    }
    async fn delete_error_rule(&self, id: i64) -> StoreResult<()> {
        error_rules::delete(&self.pool, id).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(codec::map_err)?;
        Ok(())
    }
}

#[async_trait]
impl RequestLogStore for SqliteStore {
    async fn insert_logs(&self, rows: &[RequestLog]) -> StoreResult<u64> {
        logs::insert(&self.pool, &self.ledger_pace, rows).await
    }
    async fn insert_logs_unhurried(&self, rows: &[RequestLog]) -> StoreResult<u64> {
        let on_lane = self.log_lane.run(
            || (),
            |()| {
                let (pool, pace) = (self.log_quiet.clone(), self.ledger_pace.clone());
                let rows = rows.to_vec();
                async move { logs::insert(&pool, &pace, &rows).await }
            },
        );
        match on_lane.await {
            Some(inserted) => inserted,
            None => logs::insert(&self.log_quiet, &self.ledger_pace, rows).await,
        }
    }
    async fn list_logs(&self, filter: &LogFilter) -> StoreResult<Vec<RequestLog>> {
        logs::list(&self.pool, filter).await
    }
    async fn get_log(&self, id: i64) -> StoreResult<RequestLog> {
        logs::get(&self.pool, id).await
    }
    async fn cost_buckets(
        &self,
        query: &crate::ports::store::CostQuery,
    ) -> StoreResult<Vec<crate::ports::store::CostBucket>> {
        stats::cost_buckets(&self.pool, query).await
    }
}
