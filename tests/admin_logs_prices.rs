//! The request-log and model-price admin endpoints end to end: every log filter, cursor pages,
//! 400s naming the parameter; the effective price table, put/delete, LiteLLM import.

mod support;

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use claude_code_hub::domain::request_log::RequestLog;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::postgres::TestDatabase;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + minute * 60, 0).unwrap()
}

/// Row `n` (created at minute `n`): users 1/2 alternate, key = 10 + user, provider 100 for
/// even rows else 200, statuses cycle 200/429/502, model alternates, sessions by thirds.
fn row(n: i64) -> RequestLog {
    let user = 1 + n % 2;
    RequestLog {
        id: 0,
        request_id: format!("req-{n}"),
        created_at: at(n),
        user_id: Some(user),
        key_id: Some(10 + user),
        provider_id: Some(if n % 2 == 0 { 100 } else { 200 }),
        requested_model: Some(
            if n % 2 == 0 {
                "claude-sonnet-4-5"
            } else {
                "gpt-4o"
            }
            .into(),
        ),
        forwarded_model: Some(
            if n % 2 == 0 {
                "anthropic/claude-sonnet-4-5"
            } else {
                "gpt-4o"
            }
            .into(),
        ),
        endpoint: "/v1/messages".into(),
        client_format: "claude".into(),
        status_code: [200, 429, 502][(n % 3) as usize],
        is_stream: n % 2 == 0,
        input_tokens: 100 + n,
        output_tokens: 200 + n,
        cache_creation_5m_tokens: 1,
        cache_creation_1h_tokens: 2,
        cache_read_tokens: 3,
        cost_usd: Decimal::from_str("0.001234").unwrap(),
        cost_known: true,
        duration_ms: 1000,
        ttfb_ms: Some(50),
        provider_chain: json!([{"provider_id": 100, "reason": "initial", "outcome": "ok"}]),
        session_id: Some(format!("sess-{}", n / 3)),
        user_agent: Some("claude-cli/1.0".into()),
        error_message: None,
    }
}

async fn ids(t: &TestApp, query: &str) -> Vec<i64> {
    let (s, b) = t.get(&format!("/api/v1/logs{query}")).await;
    assert_eq!(s, 200, "{query}: {b}");
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn request_ids(t: &TestApp, query: &str) -> Vec<String> {
    let (s, b) = t.get(&format!("/api/v1/logs{query}")).await;
    assert_eq!(s, 200, "{query}: {b}");
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_string())
        .collect()
}

fn names(ns: &[i64]) -> Vec<String> {
    ns.iter().map(|n| format!("req-{n}")).collect()
}

async fn logs_case(t: &TestApp) {
    let rows: Vec<RequestLog> = (0..12).map(row).collect();
    let inserted = t.app.ctx.log_store.insert_logs(&rows).await.unwrap();
    assert_eq!(inserted, 12);

    // Newest first, every field shown, cost as a decimal string, chain as JSON.
    let (s, b) = t.get("/api/v1/logs").await;
    assert_eq!(s, 200, "{b}");
    let data = b["data"].as_array().unwrap();
    assert_eq!(data.len(), 12);
    assert!(b["next_cursor"].is_null());
    let newest = &data[0];
    assert_eq!(newest["request_id"], "req-11");
    assert_eq!(newest["cost_usd"], "0.001234");
    assert_eq!(newest["provider_chain"][0]["reason"], "initial");
    for field in [
        "id",
        "request_id",
        "created_at",
        "user_id",
        "key_id",
        "provider_id",
        "requested_model",
        "forwarded_model",
        "endpoint",
        "client_format",
        "status_code",
        "is_stream",
        "input_tokens",
        "output_tokens",
        "cache_creation_5m_tokens",
        "cache_creation_1h_tokens",
        "cache_read_tokens",
        "cost_usd",
        "cost_known",
        "duration_ms",
        "ttfb_ms",
        "provider_chain",
        "session_id",
        "user_agent",
    ] {
        assert!(
            newest.get(field).is_some(),
            "log view has {field}: {newest}"
        );
    }
    let all_ids: Vec<i64> = data.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Each filter.
    assert_eq!(
        request_ids(t, "?user_id=1").await,
        names(&[10, 8, 6, 4, 2, 0])
    );
    assert_eq!(
        request_ids(t, "?key_id=12").await,
        names(&[11, 9, 7, 5, 3, 1])
    );
    assert_eq!(
        request_ids(t, "?provider_id=200").await,
        names(&[11, 9, 7, 5, 3, 1])
    );
    assert_eq!(
        request_ids(t, "?model=gpt-4o").await,
        names(&[11, 9, 7, 5, 3, 1])
    );
    // The forwarded model matches too.
    assert_eq!(
        request_ids(t, "?model=anthropic%2Fclaude-sonnet-4-5").await,
        names(&[10, 8, 6, 4, 2, 0])
    );
    assert_eq!(
        request_ids(t, "?status_class=2").await,
        names(&[9, 6, 3, 0])
    );
    assert_eq!(
        request_ids(t, "?status_class=4").await,
        names(&[10, 7, 4, 1])
    );
    assert_eq!(
        request_ids(t, "?status_class=5").await,
        names(&[11, 8, 5, 2])
    );
    assert_eq!(
        request_ids(t, "?session_id=sess-2").await,
        names(&[8, 7, 6])
    );
    let from = at(3).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = at(6).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        request_ids(t, &format!("?from={from}&to={to}")).await,
        names(&[5, 4, 3]),
        "from inclusive, to exclusive"
    );
    // Combined with AND; an offset given URL-encoded.
    assert_eq!(
        request_ids(
            t,
            "?user_id=2&status_class=5&from=2025-06-15T17:12:00%2B02:00"
        )
        .await,
        names(&[11])
    );
    assert_eq!(
        request_ids(t, "?user_id=2&status_class=5").await,
        names(&[11, 5])
    );
    assert_eq!(request_ids(t, "?user_id=999").await, Vec::<String>::new());

    // Cursor pagination across pages: 5 + 5 + 2, no duplicates, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/logs?limit=5&cursor={c}"),
            None => "/api/v1/logs?limit=5".to_string(),
        };
        let (s, b) = t.get(&q).await;
        assert_eq!(s, 200, "{b}");
        pages += 1;
        let page: Vec<i64> = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert!(page.len() <= 5);
        seen.extend(page);
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination terminates");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all_ids);
    // A page that exactly ends the data has no cursor.
    let (_, b) = t.get("/api/v1/logs?limit=12").await;
    assert!(b["next_cursor"].is_null());
    // Pagination keeps the filter.
    let (_, b) = t.get("/api/v1/logs?user_id=1&limit=4").await;
    let c = b["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        request_ids(t, &format!("?user_id=1&limit=4&cursor={c}")).await,
        names(&[2, 0])
    );
    assert_eq!(ids(t, "?limit=1000").await.len(), 12);

    // Get by id, 404.
    let id = all_ids[3];
    let (s, b) = t.get(&format!("/api/v1/logs/{id}")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["request_id"], "req-8");
    assert_eq!(b["session_id"], "sess-2");
    let (s, b) = t.get("/api/v1/logs/987654321").await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["error"]["type"], "not_found");
}

async fn bad_query(t: &TestApp, query: &str, field: &str) {
    let (s, b) = t.get(&format!("/api/v1/logs{query}")).await;
    assert_eq!(s, 400, "{query}: {b}");
    assert_eq!(b["error"]["type"], "invalid_request", "{query}: {b}");
    assert_eq!(b["error"]["field"], field, "{query}: {b}");
}

#[tokio::test]
async fn logs_filter_paginate_and_get_on_sqlite() {
    let t = spawn_app(&[]).await;
    logs_case(&t).await;
}

#[tokio::test]
async fn logs_filter_paginate_and_get_on_postgres() {
    let Some(db) = TestDatabase::create("logs_filter_paginate_and_get_on_postgres").await else {
        return;
    };
    let t = spawn_app(&[("DSN", db.url.as_str())]).await;
    logs_case(&t).await;
    drop(t);
    db.drop_db().await;
}

#[tokio::test]
async fn bad_log_queries_are_400_naming_the_parameter() {
    let t = spawn_app(&[]).await;
    bad_query(&t, "?status_class=7", "status_class").await;
    bad_query(&t, "?status_class=x", "status_class").await;
    bad_query(&t, "?from=yesterday", "from").await;
    bad_query(&t, "?to=2025-13-01T00:00:00Z", "to").await;
    bad_query(
        &t,
        "?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z",
        "to",
    )
    .await;
    bad_query(&t, "?limit=0", "limit").await;
    bad_query(&t, "?limit=1001", "limit").await;
    bad_query(&t, "?limit=ten", "limit").await;
    bad_query(&t, "?cursor=abc", "cursor").await;
    bad_query(&t, "?cursor=-4", "cursor").await;
    bad_query(&t, "?user_id=me", "user_id").await;
    let (s, b) = t.get("/api/v1/logs/abc").await;
    assert_eq!(s, 400, "{b}");
    // Without the token: 401 before any parameter is looked at.
    let r = t
        .http
        .get(t.url("/api/v1/logs?status_class=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn put(t: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = t.admin(Method::PUT, path).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn find<'a>(table: &'a Value, model: &str) -> Option<&'a Value> {
    table
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["model"] == model)
}

#[tokio::test]
async fn prices_put_get_delete_and_effective_table() {
    let t = spawn_app(&[]).await;
    let (s, table) = t.get("/api/v1/prices").await;
    assert_eq!(s, 200, "{table}");
    assert!(table.as_array().unwrap().len() > 5, "defaults listed");
    assert!(
        table
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["source"] == "default")
    );
    let default = find(&table, "claude-sonnet-4-5")
        .expect("a built-in price")
        .clone();

    // Override a default; missing cache prices are derived (Claude ratios).
    let (s, b) = put(
        &t,
        "/api/v1/prices/claude-sonnet-4-5",
        json!({"input_per_mtok": "4", "output_per_mtok": 20}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["source"], "custom");
    assert_eq!(b["cache_write_5m_per_mtok"], "5");
    assert_eq!(b["cache_write_1h_per_mtok"], "8");
    assert_eq!(b["cache_read_per_mtok"], "0.4");
    let (_, table) = t.get("/api/v1/prices").await;
    let p = find(&table, "claude-sonnet-4-5").unwrap();
    assert_eq!(p["source"], "custom");
    assert_eq!(p["input_per_mtok"], "4");
    assert_eq!(p["output_per_mtok"], "20");
    // The proxy's snapshot sees it.
    let snap = t.app.ctx.snapshot.get();
    let sp = snap
        .prices
        .iter()
        .find(|p| p.model == "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(sp.input_per_mtok, Decimal::from(4));

    // Names with dots, and with a slash sent as %2F; explicit cache prices; non-Claude derive.
    let (s, b) = put(
        &t,
        "/api/v1/prices/anthropic%2Fclaude-3.5",
        json!({"input_per_mtok": "1.5", "output_per_mtok": "7.5", "cache_write_5m_per_mtok": "2",
               "cache_write_1h_per_mtok": "3", "cache_read_per_mtok": "0.15"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["model"], "anthropic/claude-3.5");
    assert_eq!(b["cache_write_1h_per_mtok"], "3");
    let (s, b) = put(
        &t,
        "/api/v1/prices/my-model.v2",
        json!({"input_per_mtok": 0.5, "output_per_mtok": 1}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["model"], "my-model.v2");
    assert_eq!(b["cache_write_5m_per_mtok"], "0.5");
    assert_eq!(b["cache_read_per_mtok"], "0.5");
    // Replace.
    let (s, b) = put(
        &t,
        "/api/v1/prices/my-model.v2",
        json!({"input_per_mtok": "0.6", "output_per_mtok": "1"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, table) = t.get("/api/v1/prices").await;
    assert_eq!(
        find(&table, "my-model.v2").unwrap()["input_per_mtok"],
        "0.6"
    );
    assert_eq!(
        find(&table, "anthropic/claude-3.5").unwrap()["source"],
        "custom"
    );

    // Validation: negative price, wrong type, unknown field, missing field.
    for (body, field) in [
        (
            json!({"input_per_mtok": "-1", "output_per_mtok": "1"}),
            "input_per_mtok",
        ),
        (
            json!({"input_per_mtok": "1", "output_per_mtok": "1", "cache_read_per_mtok": "-0.1"}),
            "cache_read_per_mtok",
        ),
        (
            json!({"input_per_mtok": "abc", "output_per_mtok": "1"}),
            "input_per_mtok",
        ),
        (
            json!({"input_per_mtok": "1", "output_per_mtok": "1", "bogus": 1}),
            "bogus",
        ),
        (json!({"input_per_mtok": "1"}), "output_per_mtok"),
    ] {
        let (s, b) = put(&t, "/api/v1/prices/x-model", body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert_eq!(b["error"]["field"], field, "{body}: {b}");
    }

    // Delete: the default comes back; deleting again or an unknown model is 404.
    assert_eq!(t.delete("/api/v1/prices/claude-sonnet-4-5").await, 204);
    let (_, table) = t.get("/api/v1/prices").await;
    assert_eq!(find(&table, "claude-sonnet-4-5").unwrap(), &default);
    assert_eq!(t.delete("/api/v1/prices/claude-sonnet-4-5").await, 404);
    assert_eq!(t.delete("/api/v1/prices/no-such-model").await, 404);
    assert_eq!(t.delete("/api/v1/prices/anthropic%2Fclaude-3.5").await, 204);
    assert_eq!(t.delete("/api/v1/prices/my-model.v2").await, 204);
    let (_, table) = t.get("/api/v1/prices").await;
    assert!(
        table
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["source"] == "default")
    );
}

#[tokio::test]
async fn litellm_import_stores_usable_entries_exactly() {
    let t = spawn_app(&[]).await;
    // Scientific notation as LiteLLM writes it; a raw body so the exact text is kept.
    let doc = r#"{
        "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        "claude-test-1": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                          "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07,
                          "litellm_provider": "anthropic", "mode": "chat"},
        "openrouter/some.model-2": {"input_cost_per_token": 1.1e-06, "output_cost_per_token": 4.4e-06},
        "embedding-only": {"input_cost_per_token": 1e-07},
        "image-gen": {"output_cost_per_image": 0.04},
        "negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06}
    }"#;
    let r = t
        .admin(Method::POST, "/api/v1/prices/import")
        .body(doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b, json!({"imported": 2, "skipped": 3}));

    let (_, table) = t.get("/api/v1/prices").await;
    let c = find(&table, "claude-test-1").unwrap();
    assert_eq!(c["source"], "custom");
    assert_eq!(c["input_per_mtok"], "3");
    assert_eq!(c["output_per_mtok"], "15");
    assert_eq!(c["cache_write_5m_per_mtok"], "3.75");
    assert_eq!(c["cache_write_1h_per_mtok"], "6");
    assert_eq!(c["cache_read_per_mtok"], "0.3");
    let o = find(&table, "openrouter/some.model-2").unwrap();
    assert_eq!(o["input_per_mtok"], "1.1");
    assert_eq!(o["output_per_mtok"], "4.4");
    assert!(find(&table, "embedding-only").is_none());
    assert!(find(&table, "sample_spec").is_none());
    // Re-importing replaces, still counts.
    let (s, b) = t
        .post("/api/v1/prices/import", serde_json::from_str(doc).unwrap())
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["imported"], 2);
    // An imported name with a slash can be deleted through %2F.
    assert_eq!(
        t.delete("/api/v1/prices/openrouter%2Fsome.model-2").await,
        204
    );

    // Not an object, not JSON, empty: 400.
    let (s, b) = t.post("/api/v1/prices/import", json!([1, 2])).await;
    assert_eq!(s, 400, "{b}");
    for raw in ["{not json", ""] {
        let r = t
            .admin(Method::POST, "/api/v1/prices/import")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{raw:?}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["type"], "invalid_request");
    }
}

#[tokio::test]
async fn new_routes_are_in_the_spec_and_need_the_token() {
    let t = spawn_app(&[]).await;
    let spec: Value = t
        .http
        .get(t.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/logs",
        "/logs/{id}",
        "/prices",
        "/prices/{model}",
        "/prices/import",
    ] {
        assert!(paths.contains_key(p), "spec lists {p}: {:?}", paths.keys());
    }
    for (m, p) in [
        (Method::GET, "/api/v1/logs"),
        (Method::GET, "/api/v1/logs/1"),
        (Method::GET, "/api/v1/prices"),
        (Method::PUT, "/api/v1/prices/a.b"),
        (Method::DELETE, "/api/v1/prices/a%2Fb"),
        (Method::POST, "/api/v1/prices/import"),
    ] {
        let r = t
            .http
            .request(m.clone(), t.url(p))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {p}");
    }
}
