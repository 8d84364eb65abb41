//! Storage contract: one set of cases, run against SQLite (always) and PostgreSQL (when
//! `CCH_TEST_DATABASE_URL` is set or Docker is reachable). Both adapters must behave the same.
//!
//! Representation promises checked here: timestamps keep microseconds (finer digits are
//! truncated), money keeps 12 fractional digits (rounded half away from zero) and comes back
//! without trailing zeros, JSON lists/maps round-trip exactly.

mod support;

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use claude_code_hub::adapters::postgres::PostgresStore;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::domain::api_key::ApiKey;
use claude_code_hub::domain::limits::{DailyResetMode, Limits, ResetTime};
use claude_code_hub::domain::price::ModelPrice;
use claude_code_hub::domain::provider::{BreakerSettings, Provider, ProviderType, Timeouts};
use claude_code_hub::domain::request_log::{LogFilter, RequestLog};
use claude_code_hub::domain::settings::SystemSetting;
use claude_code_hub::domain::user::{Role, User};
use claude_code_hub::ports::store::{ConfigStore, RequestLogStore, StoreError, StoreResult};
use rust_decimal::Decimal;
use serde_json::json;

/// What every case needs: both ports plus re-running migrations.
#[async_trait]
trait Backend: ConfigStore + RequestLogStore {
    async fn migrate_again(&self) -> StoreResult<()>;
}

#[async_trait]
impl Backend for SqliteStore {
    async fn migrate_again(&self) -> StoreResult<()> {
        SqliteStore::migrate(self).await
    }
}

#[async_trait]
impl Backend for PostgresStore {
    async fn migrate_again(&self) -> StoreResult<()> {
        PostgresStore::migrate(self).await
    }
}

async fn sqlite_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: connect must create it.
    let url = format!("sqlite://{}/nested/cch.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$case(&store).await;
                    store.pool().close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let name = concat!("postgres::", stringify!($case));
                    let Some(db) = crate::support::postgres::TestDatabase::create(name).await
                    else {
                        return;
                    };
                    let store = super::PostgresStore::connect(&db.url).await.unwrap();
                    store.migrate().await.unwrap();
                    super::$case(&store).await;
                    store.pool().close().await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

contract_tests!(
    migrations_are_idempotent,
    provider_round_trip,
    provider_duplicate_name_conflicts,
    provider_key_replaced_alone,
    user_round_trip,
    user_duplicate_name_conflicts,
    key_round_trip,
    key_update_keeps_hash_and_owner,
    key_for_unknown_user_is_invalid_reference,
    key_duplicate_hash_conflicts,
    delete_user_cascades_keys,
    unknown_ids_are_not_found,
    price_upsert_replaces,
    settings_put_and_list,
    every_config_write_moves_the_version,
    money_keeps_twelve_digits,
    timestamps_keep_microseconds,
    log_round_trip,
    log_insert_is_idempotent,
    log_filters,
    log_cursor_pagination,
    log_cost_buckets,
);

// ---------------------------------------------------------------------------------------------
// Builders: every field set to a non-default value.

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn ts(secs: i64, micros: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, micros * 1000).unwrap()
}

fn limits_a() -> Limits {
    Limits {
        rpm: Some(60),
        limit_5h_usd: Some(dec("0.000001234")),
        limit_daily_usd: Some(dec("12.5")),
        daily_reset_mode: DailyResetMode::Rolling,
        daily_reset_time: ResetTime::parse("07:45").unwrap(),
        limit_weekly_usd: Some(dec("999999999999.999999999999")),
        limit_monthly_usd: Some(dec("0")),
        limit_total_usd: None,
        limit_concurrent_sessions: Some(3),
    }
}

fn limits_b() -> Limits {
    Limits {
        rpm: None,
        limit_5h_usd: None,
        limit_daily_usd: None,
        daily_reset_mode: DailyResetMode::Fixed,
        daily_reset_time: ResetTime::parse("23:59").unwrap(),
        limit_weekly_usd: None,
        limit_monthly_usd: Some(dec("1000000000")),
        limit_total_usd: Some(dec("42.424242424242")),
        limit_concurrent_sessions: None,
    }
}

fn provider(name: &str) -> Provider {
    Provider {
        id: 0,
        name: name.into(),
        description: "Primary relay — ünïcödé ok".into(),
        provider_type: ProviderType::OpenAiCompatible,
        base_url: "https://relay.example.com/v1".into(),
        api_key: "sk-secret-0123456789".into(),
        enabled: false,
        priority: 7,
        weight: 42,
        cost_multiplier: dec("1.25"),
        group_tag: "vip,cn".into(),
        allowed_models: vec!["claude-sonnet-4".into(), "gpt-5".into()],
        model_redirects: BTreeMap::from([
            (
                "claude-sonnet-4".to_string(),
                "anthropic/claude-sonnet-4".to_string(),
            ),
            ("gpt-5".to_string(), "openai/gpt-5".to_string()),
        ]),
        extra_client_formats: vec!["claude".into(), "gemini".into()],
        proxy_url: Some("socks5h://user:pw@127.0.0.1:1080".into()),
        proxy_fallback_to_direct: true,
        limits: limits_a(),
        timeouts: Timeouts {
            first_byte_timeout_ms: 11_000,
            idle_timeout_ms: 22_000,
            request_timeout_ms: 333_000,
        },
        breaker: BreakerSettings {
            failure_threshold: 9,
            open_duration_ms: 120_000,
            half_open_success_threshold: 4,
        },
        max_retry_attempts: Some(3),
        shaping: Default::default(),
        created_at: ts(1_700_000_000, 123_456),
        updated_at: ts(1_700_000_100, 654_321),
    }
}

fn user(name: &str) -> User {
    User {
        id: 0,
        name: name.into(),
        role: Role::Admin,
        provider_group: "vip, cn".into(),
        limits: limits_a(),
        enabled: false,
        expires_at: Some(ts(1_800_000_000, 999_999)),
        note: "a note\nwith lines".into(),
        created_at: ts(1_700_000_000, 1),
        updated_at: ts(1_700_000_001, 2),
    }
}

fn key(user_id: i64, hash: &str) -> ApiKey {
    ApiKey {
        id: 0,
        user_id,
        name: "laptop".into(),
        key_hash: hash.into(),
        key_last4: "Zz09".into(),
        enabled: false,
        expires_at: Some(ts(1_750_000_000, 500_000)),
        limits: limits_b(),
        created_at: ts(1_700_000_002, 3),
        updated_at: ts(1_700_000_003, 4),
    }
}

fn price(model: &str) -> ModelPrice {
    ModelPrice {
        model: model.into(),
        input_per_mtok: dec("3"),
        output_per_mtok: dec("15.000001"),
        cache_write_5m_per_mtok: dec("3.75"),
        cache_write_1h_per_mtok: dec("6"),
        cache_read_per_mtok: dec("0.3"),
    }
}

fn log(request_id: &str) -> RequestLog {
    RequestLog {
        id: 0,
        request_id: request_id.into(),
        created_at: ts(1_700_000_000, 250_001),
        user_id: Some(11),
        key_id: Some(22),
        provider_id: Some(33),
        requested_model: Some("claude-sonnet-4".into()),
        forwarded_model: Some("anthropic/claude-sonnet-4".into()),
        endpoint: "/v1/messages".into(),
        client_format: "claude".into(),
        status_code: 200,
        is_stream: true,
        input_tokens: 1_234,
        output_tokens: 5_678,
        cache_creation_5m_tokens: 90,
        cache_creation_1h_tokens: 91,
        cache_read_tokens: 10_000_000_000,
        cost_usd: dec("0.012345678901"),
        cost_known: true,
        duration_ms: 4_321,
        ttfb_ms: Some(210),
        provider_chain: json!([
            {"provider_id": 33, "reason": "initial", "outcome": "ok", "status": 200,
             "class": null, "duration_ms": 4000, "nested": {"a": [1, 2.5, "x", true]}}
        ]),
        session_id: Some("sess-1".into()),
        user_agent: Some("claude-cli/1.0".into()),
        error_message: Some("upstream said: slow down".into()),
    }
}

fn with_id<T: Clone>(v: &T, set: impl FnOnce(&mut T)) -> T {
    let mut v = v.clone();
    set(&mut v);
    v
}

// ---------------------------------------------------------------------------------------------
// Cases.

async fn migrations_are_idempotent(s: &dyn Backend) {
    s.migrate_again().await.unwrap();
    s.migrate_again().await.unwrap();
    s.ping().await.unwrap();
    assert!(s.list_providers().await.unwrap().is_empty());
}

async fn provider_round_trip(s: &dyn Backend) {
    let p = provider("relay-a");
    let stored = s.insert_provider(&p).await.unwrap();
    assert!(stored.id > 0);
    let expected = with_id(&p, |x| x.id = stored.id);
    assert_eq!(stored, expected);
    assert_eq!(s.get_provider(stored.id).await.unwrap(), expected);

    let other = s.insert_provider(&provider("relay-b")).await.unwrap();
    let ids: Vec<i64> = s
        .list_providers()
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec![stored.id, other.id]);

    // Change every field (created_at is kept by design).
    let changed = Provider {
        id: stored.id,
        name: "relay-a2".into(),
        description: String::new(),
        provider_type: ProviderType::GeminiCli,
        base_url: "http://10.0.0.1:8080".into(),
        api_key: "other-secret".into(),
        enabled: true,
        priority: 0,
        weight: 0,
        cost_multiplier: dec("0.000000000001"),
        group_tag: String::new(),
        allowed_models: vec![],
        model_redirects: BTreeMap::new(),
        extra_client_formats: vec!["response".into()],
        proxy_url: None,
        proxy_fallback_to_direct: false,
        limits: limits_b(),
        timeouts: Timeouts::default(),
        breaker: BreakerSettings::default(),
        max_retry_attempts: None,
        shaping: Default::default(),
        created_at: ts(1_600_000_000, 0),
        updated_at: ts(1_700_000_200, 7),
    };
    let updated = s.update_provider(&changed).await.unwrap();
    let expected = with_id(&changed, |x| x.created_at = p.created_at);
    assert_eq!(updated, expected);
    assert_eq!(s.get_provider(stored.id).await.unwrap(), expected);

    s.delete_provider(stored.id).await.unwrap();
    assert!(matches!(
        s.get_provider(stored.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.list_providers().await.unwrap(), vec![other]);
}

async fn provider_duplicate_name_conflicts(s: &dyn Backend) {
    s.insert_provider(&provider("dup")).await.unwrap();
    let b = s.insert_provider(&provider("other")).await.unwrap();
    match s.insert_provider(&provider("dup")).await {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("name"), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let renamed = with_id(&b, |x| x.name = "dup".into());
    assert!(matches!(
        s.update_provider(&renamed).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.list_providers().await.unwrap().len(), 2);
}

/// A refreshed OAuth credential replaces the key and nothing else.
async fn provider_key_replaced_alone(s: &dyn Backend) {
    let stored = s.insert_provider(&provider("oauth")).await.unwrap();
    let key = r#"{"access_token":"ya29.new","refresh_token":"1//r"}"#;
    s.set_provider_api_key(stored.id, key).await.unwrap();
    let expected = with_id(&stored, |x| x.api_key = key.into());
    assert_eq!(s.get_provider(stored.id).await.unwrap(), expected);
    assert!(matches!(
        s.set_provider_api_key(stored.id + 1000, key).await,
        Err(StoreError::NotFound)
    ));
}

async fn user_round_trip(s: &dyn Backend) {
    let u = user("alice");
    let stored = s.insert_user(&u).await.unwrap();
    let expected = with_id(&u, |x| x.id = stored.id);
    assert_eq!(stored, expected);
    assert_eq!(s.get_user(stored.id).await.unwrap(), expected);

    let changed = User {
        id: stored.id,
        name: "alice2".into(),
        role: Role::User,
        provider_group: String::new(),
        limits: limits_b(),
        enabled: true,
        expires_at: None,
        note: String::new(),
        created_at: ts(1, 0),
        updated_at: ts(1_700_000_500, 999_999),
    };
    let updated = s.update_user(&changed).await.unwrap();
    let expected = with_id(&changed, |x| x.created_at = u.created_at);
    assert_eq!(updated, expected);
    let bob = s.insert_user(&user("bob")).await.unwrap();
    assert_eq!(s.list_users().await.unwrap(), vec![expected, bob]);

    s.delete_user(stored.id).await.unwrap();
    assert!(matches!(
        s.get_user(stored.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn user_duplicate_name_conflicts(s: &dyn Backend) {
    s.insert_user(&user("carol")).await.unwrap();
    match s.insert_user(&user("carol")).await {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("name"), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let dave = s.insert_user(&user("dave")).await.unwrap();
    let renamed = with_id(&dave, |x| x.name = "carol".into());
    assert!(matches!(
        s.update_user(&renamed).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn key_round_trip(s: &dyn Backend) {
    let u1 = s.insert_user(&user("u1")).await.unwrap();
    let u2 = s.insert_user(&user("u2")).await.unwrap();
    let k = key(u1.id, "hash-1");
    let k1 = s.insert_key(&k).await.unwrap();
    assert_eq!(k1, with_id(&k, |x| x.id = k1.id));
    assert_eq!(s.get_key(k1.id).await.unwrap(), k1);
    let no_expiry = with_id(&key(u2.id, "hash-2"), |x| {
        x.expires_at = None;
        x.enabled = true;
        x.limits = limits_a();
    });
    let k2 = s.insert_key(&no_expiry).await.unwrap();
    assert_eq!(k2, with_id(&no_expiry, |x| x.id = k2.id));
    let k3 = s.insert_key(&key(u1.id, "hash-3")).await.unwrap();

    assert_eq!(
        s.list_keys().await.unwrap(),
        vec![k1.clone(), k2.clone(), k3.clone()]
    );
    assert_eq!(s.list_user_keys(u1.id).await.unwrap(), vec![k1, k3]);
    assert_eq!(s.list_user_keys(u2.id).await.unwrap(), vec![k2.clone()]);
    assert!(s.list_user_keys(u2.id + 1000).await.unwrap().is_empty());

    s.delete_key(k2.id).await.unwrap();
    assert!(matches!(s.get_key(k2.id).await, Err(StoreError::NotFound)));
    assert!(s.list_user_keys(u2.id).await.unwrap().is_empty());
}

async fn key_update_keeps_hash_and_owner(s: &dyn Backend) {
    let u1 = s.insert_user(&user("owner")).await.unwrap();
    let u2 = s.insert_user(&user("someone-else")).await.unwrap();
    let stored = s.insert_key(&key(u1.id, "hash-keep")).await.unwrap();
    let attempt = ApiKey {
        id: stored.id,
        user_id: u2.id,
        name: "renamed".into(),
        key_hash: "hash-changed".into(),
        key_last4: "XXXX".into(),
        enabled: true,
        expires_at: None,
        limits: limits_a(),
        created_at: ts(5, 0),
        updated_at: ts(1_700_009_999, 123_457),
    };
    let updated = s.update_key(&attempt).await.unwrap();
    let expected = ApiKey {
        user_id: u1.id,
        key_hash: "hash-keep".into(),
        key_last4: stored.key_last4.clone(),
        created_at: stored.created_at,
        ..attempt
    };
    assert_eq!(updated, expected);
    assert_eq!(s.get_key(stored.id).await.unwrap(), expected);
}

async fn key_for_unknown_user_is_invalid_reference(s: &dyn Backend) {
    match s.insert_key(&key(987_654, "orphan")).await {
        Err(StoreError::InvalidReference(_)) => {}
        other => panic!("expected InvalidReference, got {other:?}"),
    }
    assert!(s.list_keys().await.unwrap().is_empty());
}

async fn key_duplicate_hash_conflicts(s: &dyn Backend) {
    let u = s.insert_user(&user("hash-owner")).await.unwrap();
    s.insert_key(&key(u.id, "same-hash")).await.unwrap();
    match s.insert_key(&key(u.id, "same-hash")).await {
        Err(StoreError::Conflict(msg)) => assert!(msg.contains("key_hash"), "{msg}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

async fn delete_user_cascades_keys(s: &dyn Backend) {
    let doomed = s.insert_user(&user("doomed")).await.unwrap();
    let kept = s.insert_user(&user("kept")).await.unwrap();
    let k1 = s.insert_key(&key(doomed.id, "d1")).await.unwrap();
    s.insert_key(&key(doomed.id, "d2")).await.unwrap();
    let k3 = s.insert_key(&key(kept.id, "k1")).await.unwrap();
    s.delete_user(doomed.id).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap(), vec![k3]);
    assert!(matches!(s.get_key(k1.id).await, Err(StoreError::NotFound)));
}

async fn unknown_ids_are_not_found(s: &dyn Backend) {
    fn nf<T: std::fmt::Debug>(r: StoreResult<T>) {
        assert!(
            matches!(r, Err(StoreError::NotFound)),
            "expected NotFound, got {r:?}"
        );
    }
    nf(s.get_provider(404).await);
    nf(
        s.update_provider(&with_id(&provider("ghost"), |x| x.id = 404))
            .await,
    );
    nf(s.delete_provider(404).await);
    nf(s.get_user(404).await);
    nf(s.update_user(&with_id(&user("ghost"), |x| x.id = 404))
        .await);
    nf(s.delete_user(404).await);
    nf(s.get_key(404).await);
    nf(s.update_key(&with_id(&key(1, "ghost"), |x| x.id = 404))
        .await);
    nf(s.delete_key(404).await);
    nf(s.delete_price("no-such-model").await);
    nf(s.get_log(404).await);
}

async fn price_upsert_replaces(s: &dyn Backend) {
    let b = s.upsert_price(&price("model-b")).await.unwrap();
    assert_eq!(b, price("model-b"));
    let a = s.upsert_price(&price("model-a")).await.unwrap();
    let b2 = ModelPrice {
        model: "model-b".into(),
        input_per_mtok: dec("0.000001234"),
        output_per_mtok: dec("1000000"),
        cache_write_5m_per_mtok: dec("0"),
        cache_write_1h_per_mtok: dec("7.123456789012"),
        cache_read_per_mtok: dec("0.01"),
    };
    assert_eq!(s.upsert_price(&b2).await.unwrap(), b2);
    assert_eq!(s.list_prices().await.unwrap(), vec![a, b2]);
    s.delete_price("model-a").await.unwrap();
    assert_eq!(s.list_prices().await.unwrap().len(), 1);
}

/// Every write to a configuration table moves the configuration version (the refresh of the
/// other instances relies on it), and reads leave it alone.
async fn every_config_write_moves_the_version(s: &dyn Backend) {
    let mut last = s.config_version().await.unwrap();
    let mut moved = |what: &str, v: i64| {
        assert!(v > last, "{what}: the version stayed at {last}");
        last = v;
    };
    let p = s.insert_provider(&provider("versioned")).await.unwrap();
    moved("provider insert", s.config_version().await.unwrap());
    s.update_provider(&with_id(&p, |x| x.weight = 9))
        .await
        .unwrap();
    moved("provider update", s.config_version().await.unwrap());
    let u = s.insert_user(&user("versioned")).await.unwrap();
    moved("user insert", s.config_version().await.unwrap());
    s.update_user(&with_id(&u, |x| x.note = "changed".into()))
        .await
        .unwrap();
    moved("user update", s.config_version().await.unwrap());
    let k = s.insert_key(&key(u.id, "versioned-hash")).await.unwrap();
    moved("key insert", s.config_version().await.unwrap());
    s.delete_key(k.id).await.unwrap();
    moved("key delete", s.config_version().await.unwrap());
    s.upsert_price(&price("versioned-model")).await.unwrap();
    moved("price upsert", s.config_version().await.unwrap());
    s.delete_price("versioned-model").await.unwrap();
    moved("price delete", s.config_version().await.unwrap());
    s.put_setting(&SystemSetting {
        key: "site_title".into(),
        value: json!("v"),
    })
    .await
    .unwrap();
    moved("setting put", s.config_version().await.unwrap());
    s.delete_provider(p.id).await.unwrap();
    moved("provider delete", s.config_version().await.unwrap());
    s.delete_user(u.id).await.unwrap();
    moved("user delete", s.config_version().await.unwrap());
    // Reads change nothing.
    s.list_providers().await.unwrap();
    s.list_users().await.unwrap();
    s.list_keys().await.unwrap();
    assert_eq!(s.config_version().await.unwrap(), last);
}

async fn settings_put_and_list(s: &dyn Backend) {
    assert!(s.list_settings().await.unwrap().is_empty());
    let retention = SystemSetting {
        key: "log_retention_days".into(),
        value: json!(30),
    };
    let tz = SystemSetting {
        key: "display_timezone".into(),
        value: json!("Asia/Shanghai"),
    };
    s.put_setting(&retention).await.unwrap();
    s.put_setting(&tz).await.unwrap();
    let replaced = SystemSetting {
        key: "log_retention_days".into(),
        value: json!({"days": 7, "enabled": true, "tags": ["a", null]}),
    };
    s.put_setting(&replaced).await.unwrap();
    let mut got = s.list_settings().await.unwrap();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got, vec![tz, replaced]);
}

async fn money_keeps_twelve_digits(s: &dyn Backend) {
    let p = ModelPrice {
        model: "precise".into(),
        input_per_mtok: dec("0.000000000001"),
        output_per_mtok: dec("999999999999.999999999999"),
        // 13 fractional digits: rounded half away from zero, like NUMERIC(24,12).
        cache_write_5m_per_mtok: dec("1.0000000000005"),
        cache_write_1h_per_mtok: dec("2.0000000000004"),
        // Trailing zeros are not kept.
        cache_read_per_mtok: dec("5.500000"),
    };
    let stored = s.upsert_price(&p).await.unwrap();
    assert_eq!(stored.input_per_mtok, dec("0.000000000001"));
    assert_eq!(stored.output_per_mtok, dec("999999999999.999999999999"));
    assert_eq!(stored.cache_write_5m_per_mtok, dec("1.000000000001"));
    assert_eq!(stored.cache_write_1h_per_mtok, dec("2"));
    assert_eq!(stored.cache_read_per_mtok.to_string(), "5.5");
    assert_eq!(
        stored.output_per_mtok.to_string(),
        "999999999999.999999999999"
    );
    assert_eq!(s.list_prices().await.unwrap(), vec![stored]);
}

async fn timestamps_keep_microseconds(s: &dyn Backend) {
    let with_nanos = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let u = with_id(&user("clock"), |x| {
        x.created_at = with_nanos;
        x.updated_at = ts(946_684_800, 1); // 2000-01-01, PostgreSQL's epoch
        x.expires_at = Some(ts(4_102_444_800, 999_999)); // 2100-01-01
    });
    let stored = s.insert_user(&u).await.unwrap();
    assert_eq!(stored.created_at, ts(1_700_000_000, 123_456));
    assert_eq!(stored.updated_at, ts(946_684_800, 1));
    assert_eq!(stored.expires_at, Some(ts(4_102_444_800, 999_999)));
}

async fn log_round_trip(s: &dyn Backend) {
    let full = log("req-full");
    let sparse = RequestLog {
        request_id: "req-sparse".into(),
        user_id: None,
        key_id: None,
        provider_id: None,
        requested_model: None,
        forwarded_model: None,
        status_code: 401,
        is_stream: false,
        cost_usd: Decimal::ZERO,
        cost_known: false,
        ttfb_ms: None,
        provider_chain: json!([]),
        session_id: None,
        user_agent: None,
        error_message: None,
        ..log("x")
    };
    assert_eq!(
        s.insert_logs(&[full.clone(), sparse.clone()])
            .await
            .unwrap(),
        2
    );
    let listed = s
        .list_logs(&LogFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let (got_sparse, got_full) = (&listed[0], &listed[1]);
    assert!(got_sparse.id > got_full.id);
    assert_eq!(got_full, &with_id(&full, |x| x.id = got_full.id));
    assert_eq!(got_sparse, &with_id(&sparse, |x| x.id = got_sparse.id));
    assert_eq!(&s.get_log(got_full.id).await.unwrap(), got_full);
    assert_eq!(s.insert_logs(&[]).await.unwrap(), 0);
}

async fn log_insert_is_idempotent(s: &dyn Backend) {
    assert_eq!(s.insert_logs(&[log("a"), log("b")]).await.unwrap(), 2);
    // Replaying a spool: known ids are skipped, new ones inserted, duplicates in one batch too.
    assert_eq!(
        s.insert_logs(&[log("a"), log("c"), log("c"), log("b")])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.insert_logs(&[log("a")]).await.unwrap(), 0);
    let all = s
        .list_logs(&LogFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|l| l.request_id.as_str()).collect();
    assert_eq!(ids, vec!["c", "b", "a"]);
    // A large batch crosses the adapters' chunk size.
    let many: Vec<RequestLog> = (0..1200).map(|i| log(&format!("bulk-{i}"))).collect();
    assert_eq!(s.insert_logs(&many).await.unwrap(), 1200);
    assert_eq!(s.insert_logs(&many).await.unwrap(), 0);
}

/// Request ids of the rows a filter returns, newest first.
async fn ids(s: &dyn Backend, f: LogFilter) -> Vec<String> {
    let f = LogFilter {
        limit: if f.limit == 0 { 100 } else { f.limit },
        ..f
    };
    s.list_logs(&f)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.request_id)
        .collect()
}

async fn log_filters(s: &dyn Backend) {
    let base = ts(1_700_000_000, 0);
    let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
    let rows = vec![
        RequestLog {
            created_at: at(0),
            status_code: 200,
            ..log("r1")
        },
        RequestLog {
            created_at: at(1),
            user_id: Some(12),
            key_id: Some(23),
            provider_id: Some(34),
            requested_model: Some("gpt-5".into()),
            forwarded_model: Some("gpt-5".into()),
            status_code: 404,
            session_id: Some("sess-2".into()),
            ..log("r2")
        },
        RequestLog {
            created_at: at(1_500),
            requested_model: Some("alias".into()),
            forwarded_model: Some("gpt-5".into()),
            status_code: 503,
            ..log("r3")
        },
        RequestLog {
            created_at: at(60_000),
            user_id: None,
            key_id: None,
            provider_id: None,
            requested_model: None,
            forwarded_model: None,
            status_code: 299,
            session_id: None,
            ..log("r4")
        },
        RequestLog {
            created_at: at(60_001),
            status_code: 499,
            ..log("r5")
        },
        RequestLog {
            created_at: at(120_000),
            status_code: 500,
            ..log("r6")
        },
    ];
    assert_eq!(s.insert_logs(&rows).await.unwrap(), 6);
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let all = LogFilter::default();

    assert_eq!(
        ids(s, all.clone()).await,
        v(&["r6", "r5", "r4", "r3", "r2", "r1"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                user_id: Some(12),
                ..all.clone()
            }
        )
        .await,
        v(&["r2"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                user_id: Some(11),
                ..all.clone()
            }
        )
        .await,
        v(&["r6", "r5", "r3", "r1"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                key_id: Some(23),
                ..all.clone()
            }
        )
        .await,
        v(&["r2"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                provider_id: Some(34),
                ..all.clone()
            }
        )
        .await,
        v(&["r2"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                provider_id: Some(33),
                ..all.clone()
            }
        )
        .await,
        v(&["r6", "r5", "r3", "r1"])
    );
    // Model matches the requested or the forwarded name.
    let gpt5 = LogFilter {
        model: Some("gpt-5".into()),
        ..all.clone()
    };
    assert_eq!(ids(s, gpt5).await, v(&["r3", "r2"]));
    let alias = LogFilter {
        model: Some("alias".into()),
        ..all.clone()
    };
    assert_eq!(ids(s, alias).await, v(&["r3"]));
    let fwd = LogFilter {
        model: Some("anthropic/claude-sonnet-4".into()),
        ..all.clone()
    };
    assert_eq!(ids(s, fwd).await, v(&["r6", "r5", "r1"]));
    // Status classes cover whole hundreds.
    assert_eq!(
        ids(
            s,
            LogFilter {
                status_class: Some(2),
                ..all.clone()
            }
        )
        .await,
        v(&["r4", "r1"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                status_class: Some(4),
                ..all.clone()
            }
        )
        .await,
        v(&["r5", "r2"])
    );
    assert_eq!(
        ids(
            s,
            LogFilter {
                status_class: Some(5),
                ..all.clone()
            }
        )
        .await,
        v(&["r6", "r3"])
    );
    // from is inclusive, to exclusive, at millisecond (and finer) resolution.
    let window = LogFilter {
        from: Some(at(1)),
        to: Some(at(60_001)),
        ..all.clone()
    };
    assert_eq!(ids(s, window).await, v(&["r4", "r3", "r2"]));
    let micro = LogFilter {
        from: Some(at(0) + chrono::Duration::microseconds(1)),
        ..all.clone()
    };
    assert_eq!(ids(s, micro).await.len(), 5);
    assert_eq!(
        ids(
            s,
            LogFilter {
                to: Some(at(0)),
                ..all.clone()
            }
        )
        .await,
        Vec::<String>::new()
    );
    let sess = LogFilter {
        session_id: Some("sess-2".into()),
        ..all.clone()
    };
    assert_eq!(ids(s, sess).await, v(&["r2"]));
    // Filters combine with AND.
    let combined = LogFilter {
        user_id: Some(11),
        status_class: Some(5),
        from: Some(at(100_000)),
        ..all.clone()
    };
    assert_eq!(ids(s, combined).await, v(&["r6"]));
    assert_eq!(
        ids(
            s,
            LogFilter {
                limit: 2,
                ..all.clone()
            }
        )
        .await,
        v(&["r6", "r5"])
    );
}

async fn log_cost_buckets(s: &dyn Backend) {
    use claude_code_hub::ports::store::{CostBucket, CostQuery, CostScope};
    let row = |id: &str, secs: i64, user: Option<i64>, cost: &str| RequestLog {
        created_at: ts(secs, 0),
        user_id: user,
        key_id: Some(7),
        cost_usd: dec(cost),
        ..log(id)
    };
    let t0 = 1_700_000_000;
    let rows = vec![
        row("c1", t0, Some(1), "0.100000000001"),
        row("c2", t0 + 59, Some(1), "0.2"),
        row("c3", t0 + 60, Some(1), "1"),
        row("c4", t0 + 61, Some(2), "5"),
        row("c5", t0 + 120, Some(1), "9"), // at `until`: excluded
        row("c6", t0 - 1, Some(1), "9"),   // before `since`: excluded
        row("c7", t0 + 10, None, "9"),     // no user
    ];
    assert_eq!(s.insert_logs(&rows).await.unwrap(), 7);
    let q = |id: Option<i64>, bucket_ms: i64| CostQuery {
        scope: CostScope::User,
        id,
        since: ts(t0, 0),
        until: ts(t0 + 120, 0),
        bucket_ms,
    };
    let b = |entity_id: i64, bucket: i64, cost: &str| CostBucket {
        entity_id,
        bucket,
        cost_usd: dec(cost),
    };
    assert_eq!(
        s.cost_buckets(&q(None, 60_000)).await.unwrap(),
        [b(1, 0, "0.300000000001"), b(1, 1, "1"), b(2, 1, "5")]
    );
    assert_eq!(
        s.cost_buckets(&q(Some(1), i64::MAX)).await.unwrap(),
        [b(1, 0, "1.300000000001")]
    );
    let keys = CostQuery {
        scope: CostScope::Key,
        ..q(None, i64::MAX)
    };
    assert_eq!(
        s.cost_buckets(&keys).await.unwrap(),
        [b(7, 0, "15.300000000001")]
    );
}

async fn log_cursor_pagination(s: &dyn Backend) {
    let rows: Vec<RequestLog> = (0..25)
        .map(|i| RequestLog {
            user_id: Some(if i % 2 == 0 { 1 } else { 2 }),
            ..log(&format!("page-{i:02}"))
        })
        .collect();
    assert_eq!(s.insert_logs(&rows).await.unwrap(), 25);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let f = LogFilter {
            user_id: Some(1),
            before_id: cursor,
            limit: 5,
            ..Default::default()
        };
        let page = s.list_logs(&f).await.unwrap();
        assert!(page.len() <= 5);
        assert!(page.windows(2).all(|w| w[0].id > w[1].id));
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        seen.extend(page.into_iter().map(|l| l.request_id));
    }
    let expected: Vec<String> = (0..25)
        .rev()
        .filter(|i| i % 2 == 0)
        .map(|i| format!("page-{i:02}"))
        .collect();
    assert_eq!(seen, expected);
}

/// `sqlite::memory:` works for quick tests: the single pooled connection keeps the database alive.
#[tokio::test]
async fn sqlite_in_memory_url_works() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let u = store.insert_user(&user("mem")).await.unwrap();
    assert_eq!(store.get_user(u.id).await.unwrap().name, "mem");
}

/// A `DSN` naming a file in an existing folder (even `/tmp`) leaves the folder's mode alone; the
/// database file itself is private. (`sqlite:///tmp/x.db` used to make `/tmp` 0700.)
#[tokio::test]
async fn a_sqlite_file_in_an_existing_folder_leaves_the_folder_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("shared.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o755);
    assert_eq!(mode(&db), 0o600);
}
