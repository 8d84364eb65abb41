//! Issue 16 item 6: requests refused before routing are counted in `/metrics` by reason, and
//! those that presented a valid key leave a request-log row (visible in `GET /api/v1/logs`);
//! requests without a valid key leave no row.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::postgres::TestDatabase;

/// Creates a user with a key and returns `(user_id, key_id, plaintext)`.
async fn user_key(t: &TestApp, name: &str) -> (i64, i64, String) {
    t.user_with_key(json!({ "name": name })).await
}

async fn send(t: &TestApp, path: &str, key: Option<&str>, body: &str) -> u16 {
    let mut r = t
        .http
        .post(t.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        r = r.header("x-api-key", k).bearer_auth(k);
    }
    r.send().await.unwrap().status().as_u16()
}

async fn metric(t: &TestApp, series: &str) -> u64 {
    let text = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
}

/// Polls the log until `want` rows are there (the writer is asynchronous).
async fn logs(t: &TestApp, want: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    for _ in 0..50 {
        let (s, page) = t.get("/api/v1/logs?limit=100").await;
        assert_eq!(s, 200, "{page}");
        rows = page["data"].as_array().cloned().unwrap_or_default();
        if rows.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}

async fn case(t: &TestApp) {
    let (uid, kid, key) = user_key(t, "alice").await;
    let (off_uid, off_kid, off_key) = user_key(t, "bob").await;
    let (s, _) = t
        .patch(
            &format!("/api/v1/keys/{off_kid}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let big = "x".repeat(2048);
    // Refused with a valid key: each leaves a row.
    let keyed = [
        ("/v1/messages", "{not json", 400, "invalid_body"),
        (
            "/v1/chat/completions",
            r#"{"model":"m","stream":"yes","messages":[]}"#,
            400,
            "invalid_body",
        ),
        ("/v1/messages", r#"{"messages":[]}"#, 400, "missing_model"),
        ("/v1/messages", big.as_str(), 413, "body_too_large"),
    ];
    for (path, body, status, _) in keyed {
        assert_eq!(
            send(t, path, Some(&key), body).await,
            status,
            "{path} {body:.40}"
        );
    }
    assert_eq!(send(t, "/v1/messages", Some(&off_key), "{}").await, 403);
    // Refused without a valid key: counted only.
    assert_eq!(send(t, "/v1/messages", None, "{}").await, 401);
    assert_eq!(
        send(t, "/v1/messages", Some("cch_unknown_key_000"), "{}").await,
        401
    );
    assert_eq!(
        send(t, "/v1/chat/completions", Some("cch_nope"), "{}").await,
        401
    );

    for (series, want) in [
        ("cch_rejected_requests_total{reason=\"invalid_body\"}", 2),
        ("cch_rejected_requests_total{reason=\"missing_model\"}", 1),
        ("cch_rejected_requests_total{reason=\"body_too_large\"}", 1),
        ("cch_rejected_requests_total{reason=\"key_refused\"}", 1),
        ("cch_rejected_requests_total{reason=\"missing_key\"}", 1),
        ("cch_rejected_requests_total{reason=\"invalid_key\"}", 2),
        ("cch_requests_total{outcome=\"client_error\"}", 8),
    ] {
        assert_eq!(metric(t, series).await, want, "{series}");
    }

    let rows = logs(t, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = if rows.len() == 5 {
        logs(t, 5).await
    } else {
        rows
    };
    assert_eq!(
        rows.len(),
        5,
        "one row per keyed refusal, none for 401: {rows:#?}"
    );
    let mut seen: Vec<(i64, i64, u16, String)> = rows
        .iter()
        .map(|r| {
            assert!(r["provider_id"].is_null(), "{r}");
            let msg = r["error_message"].as_str().unwrap_or_default().to_string();
            let reason = msg
                .strip_prefix("rejected (")
                .and_then(|m| m.split(')').next())
                .unwrap_or_else(|| panic!("no reason in {r}"))
                .to_string();
            (
                r["user_id"].as_i64().unwrap(),
                r["key_id"].as_i64().unwrap(),
                r["status_code"].as_u64().unwrap() as u16,
                reason,
            )
        })
        .collect();
    seen.sort_by(|a, b| (a.2, &a.3).cmp(&(b.2, &b.3)));
    let mut want: Vec<(i64, i64, u16, String)> = keyed
        .iter()
        .map(|(_, _, s, r)| (uid, kid, *s, r.to_string()))
        .collect();
    want.push((off_uid, off_kid, 403, "key_refused".into()));
    want.sort_by(|a, b| (a.2, &a.3).cmp(&(b.2, &b.3)));
    assert_eq!(seen, want);
    // The key owner's failures are found by key.
    let (_, page) = t.get(&format!("/api/v1/logs?key_id={kid}")).await;
    assert!(page.to_string().contains("missing_model"), "{page}");
}

#[tokio::test]
async fn refusals_are_counted_by_reason_and_logged_only_under_a_valid_key() {
    let t = spawn_app(&[("MAX_BODY_BYTES", "1024")]).await;
    case(&t).await;
}

#[tokio::test]
async fn refusals_are_counted_and_logged_on_postgres() {
    let Some(db) = TestDatabase::create("refusals_are_counted_and_logged_pg").await else {
        return;
    };
    let t = spawn_app(&[("DSN", db.url.as_str()), ("MAX_BODY_BYTES", "1024")]).await;
    case(&t).await;
    drop(t);
    db.drop_db().await;
}
