use std::str::FromStr;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;

fn log(n: i64, status: i32, cost: &str) -> RequestLog {
    RequestLog {
        id: 0,
        request_id: format!("r{n}"),
        created_at: Utc.with_ymd_and_hms(2026, 3, 1, 10, 59, 59).unwrap(),
        user_id: Some(1),
        key_id: Some(2),
        provider_id: Some(3),
        requested_model: Some("asked".into()),
        forwarded_model: Some("sent".into()),
        endpoint: "/v1/messages".into(),
        client_format: "claude".into(),
        status_code: status,
        is_stream: true,
        input_tokens: 10,
        output_tokens: 20,
        cache_creation_5m_tokens: 1,
        cache_creation_1h_tokens: 2,
        cache_read_tokens: 3,
        cost_usd: Decimal::from_str(cost).unwrap(),
        cost_known: true,
        duration_ms: 1000,
        ttfb_ms: Some(300),
        provider_chain: serde_json::json!([{ "converted": false }, { "converted": true }]),
        session_id: None,
        user_agent: None,
        error_message: None,
    }
}

#[test]
fn cost_splits_into_micros_and_picos_and_joins_exactly() {
    for s in [
        "0",
        "0.000000000001",
        "1.234567891234",
        "12345.999999999999",
        "-0.5",
    ] {
        let d = Decimal::from_str(s).unwrap();
        let (m, p) = split_cost(d);
        assert!((0..1_000_000).contains(&p), "{s}: {p}");
        assert_eq!(join_cost(m, p), d.normalize(), "{s}");
    }
    // Rounded to 12 decimals like the log column.
    let (m, p) = split_cost(Decimal::from_str("0.0000000000015").unwrap());
    assert_eq!((m, p), (0, 2));
}

#[test]
fn rows_of_one_hour_and_identity_share_a_roll_up() {
    let mut a = log(1, 200, "0.1");
    let b = log(2, 200, "0.2");
    let c = log(3, 429, "0");
    a.ttfb_ms = None;
    let rows = summarise([&a, &b, &c]);
    assert_eq!(rows.len(), 2);
    let (k, ok) = &rows[0];
    assert_eq!(
        k.hour,
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
            .unwrap()
            .timestamp()
    );
    assert_eq!(k.model, "sent");
    assert_eq!(k.outcome, OutcomeClass::Success);
    assert_eq!(ok.requests, 2);
    assert_eq!(ok.errors, 0);
    assert_eq!(ok.cost(), Decimal::from_str("0.3").unwrap());
    assert_eq!(ok.ttfb_count, 1);
    assert_eq!(ok.ttfb_ms, 300);
    assert_eq!(ok.converted, 2);
    assert_eq!(ok.input_tokens, 20);
    let (k, limited) = &rows[1];
    assert_eq!(k.outcome, OutcomeClass::RateLimited);
    assert_eq!(limited.errors, 1);
}

#[test]
fn missing_ids_and_models_become_zero_and_empty() {
    let mut a = log(1, 403, "0");
    a.user_id = None;
    a.key_id = None;
    a.provider_id = None;
    a.forwarded_model = None;
    a.requested_model = None;
    a.provider_chain = serde_json::Value::Null;
    let k = key_of(&a);
    assert_eq!((k.user_id, k.key_id, k.provider_id), (0, 0, 0));
    assert_eq!(k.model, "");
    assert_eq!(k.outcome, OutcomeClass::ClientError);
    assert!(!was_converted(&a));
}

#[test]
fn outcome_classes_follow_the_status() {
    assert_eq!(OutcomeClass::of_status(200), OutcomeClass::Success);
    assert_eq!(OutcomeClass::of_status(400), OutcomeClass::ClientError);
    assert_eq!(OutcomeClass::of_status(429), OutcomeClass::RateLimited);
    assert_eq!(OutcomeClass::of_status(499), OutcomeClass::Cancelled);
    assert_eq!(OutcomeClass::of_status(503), OutcomeClass::ServerError);
}

#[test]
fn quantiles_interpolate_inside_the_histogram_bucket() {
    let mut h = [0i64; TTFB_BUCKETS];
    assert_eq!(histogram_quantile(&h, 0.5), None);
    h[ttfb_bucket(300)] = 10; // 250..500
    let p50 = histogram_quantile(&h, 0.5).unwrap();
    assert!((p50 - 375.0).abs() < 1e-9, "{p50}");
    h[TTFB_BUCKETS - 1] = 90; // slower than the last bound
    assert_eq!(histogram_quantile(&h, 0.95), Some(30_000.0));
    assert_eq!(ttfb_bucket(100), 0);
    assert_eq!(ttfb_bucket(101), 1);
}
