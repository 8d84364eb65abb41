use super::*;
use crate::domain::failure::MatchKind;
use crate::domain::limits::DailyResetMode;
use crate::domain::provider::ProviderType;
use rust_decimal::Decimal;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn has(unmapped: &[String], needle: &str) -> bool {
    unmapped.iter().any(|l| l.contains(needle))
}

#[test]
fn users_keys_and_their_limits_map_and_keys_keep_working() {
    let dump = LegacyDump {
        users: vec![
            json!({"id": 1, "name": "alice", "description": "team a", "role": "admin",
                   "rpm_limit": 60, "daily_limit_usd": 100.5, "provider_group": "*",
                   "limit_5h_usd": 10, "limit_weekly_usd": null, "limit_monthly_usd": 300,
                   "limit_total_usd": 0, "limit_concurrent_sessions": 3,
                   "daily_reset_mode": "rolling", "daily_reset_time": "08:30",
                   "is_enabled": true, "expires_at": "2027-01-01T00:00:00+00:00",
                   "tags": ["x"]}),
            json!({"id": 2, "name": "gone", "deleted_at": "2026-01-01T00:00:00+00:00"}),
        ],
        keys: vec![
            json!({"id": 10, "user_id": 1, "key": "sk-0123456789abcdef", "name": "laptop",
                   "is_enabled": false, "limit_daily_usd": 5, "provider_group": "vip"}),
            json!({"id": 11, "user_id": 1, "key": "sk-0123456789abcdef", "name": "dup"}),
            json!({"id": 12, "user_id": 2, "key": "sk-other", "name": "orphan"}),
        ],
        ..LegacyDump::default()
    };
    let m = map_legacy(&dump, now());
    assert_eq!(m.bundle.users.len(), 1);
    let u = &m.bundle.users[0];
    assert_eq!(u.user.name, "alice");
    assert_eq!(u.user.role, Role::Admin);
    assert_eq!(u.user.provider_group, "", "'*' grants every provider");
    assert_eq!(u.user.note, "team a");
    assert_eq!(u.user.limits.rpm, Some(60));
    assert_eq!(u.user.limits.limit_daily_usd, Some(Decimal::new(1005, 1)));
    assert_eq!(
        u.user.limits.limit_total_usd, None,
        "0 means no limit there"
    );
    assert_eq!(u.user.limits.limit_concurrent_sessions, Some(3));
    assert_eq!(u.user.limits.daily_reset_mode, DailyResetMode::Rolling);
    assert_eq!(u.user.limits.daily_reset_time.to_string(), "08:30");
    assert!(u.user.expires_at.is_some());
    assert_eq!(u.keys.len(), 1);
    let k = &u.keys[0];
    assert_eq!(k.key_hash, hash_key("sk-0123456789abcdef"));
    assert_eq!(k.key_last4, "cdef");
    assert!(!k.enabled);
    assert_eq!(k.limits.limit_daily_usd, Some(Decimal::from(5)));
    assert!(has(&m.unmapped, "user 'alice' (id 1): tags not mapped"));
    assert!(has(&m.unmapped, "user 'gone' (id 2): deleted"));
    assert!(has(&m.unmapped, "provider group 'vip' not mapped"));
    assert!(has(
        &m.unmapped,
        "key id 11: the same key text as key id 10"
    ));
    assert!(has(
        &m.unmapped,
        "key id 12: its user id 2 was not imported"
    ));
}

#[test]
fn providers_map_with_their_routing_limits_timeouts_and_proxy() {
    let dump = LegacyDump {
        providers: vec![
            json!({"id": 5, "name": "relay", "url": "https://relay.example/api", "key": "sk-up",
                   "provider_type": "claude-auth", "weight": 7, "priority": 2,
                   "cost_multiplier": 1.5, "group_tag": "vip,default",
                   "model_redirects": {"claude-x": "claude-y"},
                   "allowed_models": ["claude-x", {"matchType": "exact", "pattern": "claude-z"}],
                   "proxy_url": "socks5://127.0.0.1:1080", "proxy_fallback_to_direct": true,
                   "limit_daily_usd": 50, "limit_concurrent_sessions": 0,
                   "first_byte_timeout_streaming_ms": 0, "streaming_idle_timeout_ms": 45000,
                   "request_timeout_non_streaming_ms": 600000,
                   "circuit_breaker_failure_threshold": 3, "circuit_breaker_open_duration": 120000,
                   "circuit_breaker_half_open_success_threshold": 1, "max_retry_attempts": 4,
                   "custom_headers": {"x-a": "b"}}),
            json!({"id": 6, "name": "wild", "url": "https://w.example", "key": "k",
                   "provider_type": "codex", "group_tag": null,
                   "allowed_models": [{"matchType": "prefix", "pattern": "gpt-"}],
                   "model_redirects": [{"matchType": "regex", "source": "a.*", "target": "b"}]}),
            json!({"id": 7, "name": "odd", "url": "https://o.example", "key": "k",
                   "provider_type": "bedrock"}),
        ],
        ..LegacyDump::default()
    };
    let m = map_legacy(&dump, now());
    assert_eq!(m.bundle.providers.len(), 2, "{:?}", m.unmapped);
    let p = &m.bundle.providers[0];
    assert_eq!(p.provider_type, ProviderType::ClaudeAuth);
    assert_eq!(p.base_url, "https://relay.example/api");
    assert_eq!((p.weight, p.priority), (7, 2));
    assert_eq!(p.cost_multiplier, Decimal::new(15, 1));
    assert_eq!(p.group_tag, "vip,default");
    assert_eq!(p.allowed_models, vec!["claude-x", "claude-z"]);
    assert_eq!(p.model_redirects["claude-x"], "claude-y");
    assert_eq!(p.proxy_url.as_deref(), Some("socks5://127.0.0.1:1080"));
    assert!(p.proxy_fallback_to_direct && p.enabled);
    assert_eq!(p.limits.limit_daily_usd, Some(Decimal::from(50)));
    assert_eq!(p.limits.limit_concurrent_sessions, None);
    assert_eq!(p.timeouts.first_byte_timeout_ms, 3_600_000);
    assert_eq!(p.timeouts.idle_timeout_ms, 45_000);
    assert_eq!(p.timeouts.request_timeout_ms, 600_000);
    assert_eq!(p.breaker.failure_threshold, 3);
    assert_eq!(p.breaker.open_duration_ms, 120_000);
    assert_eq!(p.breaker.half_open_success_threshold, 1);
    assert_eq!(p.max_retry_attempts, Some(4));
    let w = &m.bundle.providers[1];
    assert_eq!(
        w.group_tag, "default",
        "untagged is the default group there"
    );
    assert!(
        !w.enabled,
        "a lost model restriction must not widen what it serves"
    );
    assert!(w.allowed_models.is_empty() && w.model_redirects.is_empty());
    assert!(has(
        &m.unmapped,
        "first_byte_timeout_streaming_ms 0 (no limit)"
    ));
    assert!(
        !has(&m.unmapped, "custom_headers"),
        "custom headers now come over"
    );
    assert_eq!(
        p.shaping.custom_headers.get("x-a").map(String::as_str),
        Some("b")
    );
    assert!(has(&m.unmapped, "allowed model rule prefix 'gpt-'"));
    assert!(has(&m.unmapped, "redirect rule regex"));
    assert!(has(
        &m.unmapped,
        "provider 'wild' (id 6): imported disabled"
    ));
    assert!(has(&m.unmapped, "provider type 'bedrock' unknown"));
}

#[test]
fn latest_price_wins_and_error_rules_keep_their_override() {
    let dump = LegacyDump {
        model_prices: vec![
            json!({"id": 1, "model_name": "claude-q", "created_at": "2026-01-01T00:00:00+00:00",
                   "price_data": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}}),
            json!({"id": 2, "model_name": "claude-q", "created_at": "2026-02-01T00:00:00+00:00",
                   "price_data": {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015,
                                  "cache_read_input_token_cost": 0.0000003}}),
            json!({"id": 3, "model_name": "img", "price_data": {"output_cost_per_image": 0.04}}),
        ],
        error_rules: vec![
            json!({"id": 1, "pattern": "quota exceeded", "match_type": "contains",
                   "category": "validation_error", "is_enabled": true, "priority": 5,
                   "override_status_code": 429,
                   "override_response": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}}),
            json!({"id": 2, "pattern": "([", "match_type": "regex"}),
        ],
        sensitive_words: vec![
            json!({"id": 4, "word": "secret", "description": "why", "is_enabled": false}),
            json!({"id": 5, "word": "((", "match_type": "regex"}),
            json!({"id": 6, "word": "x", "match_type": "fuzzy"}),
        ],
        webhook_targets: vec![json!({"name": "wechat"})],
        ..LegacyDump::default()
    };
    let m = map_legacy(&dump, now());
    assert_eq!(m.bundle.prices.len(), 1);
    let p = &m.bundle.prices[0];
    assert_eq!(p.input_per_mtok, Decimal::from(3));
    assert_eq!(p.output_per_mtok, Decimal::from(15));
    assert_eq!(p.cache_read_per_mtok, Decimal::new(3, 1));
    assert!(has(&m.unmapped, "price of model 'img'"));
    assert_eq!(m.bundle.error_rules.len(), 1);
    let r = &m.bundle.error_rules[0];
    assert_eq!(r.rule.match_kind, MatchKind::Contains);
    assert_eq!(r.rule.override_status, Some(429));
    assert_eq!(r.rule.override_message.as_deref(), Some("slow down"));
    assert_eq!(r.priority, 5);
    assert!(has(&m.unmapped, "error rule '([' (id 2): not imported"));
    assert_eq!(m.bundle.sensitive_words.len(), 1);
    let w = &m.bundle.sensitive_words[0];
    assert_eq!(
        (w.word.as_str(), w.note.as_str(), w.enabled),
        ("secret", "why", false)
    );
    assert_eq!(
        w.match_type,
        crate::domain::sensitive_words::WordMatch::Contains
    );
    assert!(has(
        &m.unmapped,
        "sensitive word (id 5): word: invalid pattern"
    ));
    assert!(has(
        &m.unmapped,
        "sensitive word (id 6): match type not known"
    ));
    assert!(has(&m.unmapped, "webhook targets: 1 not imported"));
}
