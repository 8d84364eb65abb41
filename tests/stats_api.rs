//! `/api/v1/stats/*` end to end: answers computed from roll-ups, identical after every log row
//! is deleted (and so is a quota recompute), input errors named, admin auth required.

mod support;

use chrono::{DateTime, Duration, Utc};
use claude_code_hub::domain::request_log::RequestLog;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};

fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() / 3600 * 3600, 0).unwrap()
}

/// Rows for users `uid` (cheap) and `uid2` (expensive), spread over the 30 hours before the
/// previous hour, so none falls in the current hour.
fn logs(uid: i64, uid2: i64) -> Vec<RequestLog> {
    let end = hour_floor(Utc::now()) - Duration::hours(1);
    (0..60)
        .map(|i| {
            let mut r = support::log_rows::minimal(&format!("api-{i}"));
            r.created_at = end - Duration::minutes(30 * i + 7);
            let rich = i % 3 == 0;
            r.user_id = Some(if rich { uid2 } else { uid });
            r.key_id = Some(900 + i % 2);
            r.provider_id = Some(77);
            r.forwarded_model = Some("model-x".into());
            r.status_code = if i % 10 == 9 { 502 } else { 200 };
            r.input_tokens = 100;
            r.output_tokens = 10;
            r.cache_read_tokens = 300;
            r.cost_usd = if rich {
                Decimal::new(1_000_001, 6)
            } else {
                Decimal::new(1, 3)
            };
            r.ttfb_ms = Some(200 + i);
            r
        })
        .collect()
}

async fn get(t: &TestApp, path: &str) -> Value {
    let (status, body) = t.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Every answer the test compares before and after cleanup.
async fn answers(t: &TestApp, from: &str, to: &str, uid: i64) -> Vec<Value> {
    let q = format!("from={from}&to={to}");
    let mut out = vec![
        get(t, &format!("/api/v1/stats/overview?period=custom&{q}")).await,
        get(
            t,
            &format!("/api/v1/stats/leaderboard?scope=user&period=custom&{q}&order=cost&limit=5"),
        )
        .await,
        get(
            t,
            &format!("/api/v1/stats/timeseries?metric=cost&bucket=hour&{q}&group_by=user&top=1"),
        )
        .await,
        get(
            t,
            &format!("/api/v1/stats/timeseries?metric=tokens&bucket=day&{q}"),
        )
        .await,
    ];
    let (status, usage) = t
        .post(&format!("/api/v1/users/{uid}/usage/recompute"), json!({}))
        .await;
    assert_eq!(status, 200, "{usage}");
    // Calendar windows and the total start on an hour, so roll-ups answer them alone; the
    // rolling 5 h / 24 h windows read their partial first hour from the log (kept ≥ 1 day).
    let calendar: Vec<Value> = usage["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| ["total", "weekly", "monthly"].contains(&w["window"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    assert_eq!(calendar.len(), 3, "{usage}");
    out.push(Value::Array(calendar));
    // Live figures legitimately change once the log is gone.
    out[0]["requests_last_minute"] = Value::Null;
    out[0]["active_sessions"] = Value::Null;
    out
}

async fn the_statistics_survive_log_cleanup(t: &TestApp, delete_logs: &str) {
    let (s, u) = t
        .post(
            "/api/v1/users",
            json!({"name": "cheap", "limit_total_usd": "1000"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_i64().unwrap();
    let (_, u2) = t.post("/api/v1/users", json!({"name": "rich"})).await;
    let uid2 = u2["id"].as_i64().unwrap();
    let rows = logs(uid, uid2);
    t.app.ctx.log_store.insert_logs(&rows).await.unwrap();

    let to = hour_floor(Utc::now()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let from = (hour_floor(Utc::now()) - Duration::hours(48))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (from, to) = (urlencode(&from), urlencode(&to));
    let before = answers(t, &from, &to, uid).await;

    let overview = &before[0];
    assert_eq!(overview["requests"], 60);
    assert_eq!(overview["errors"], 6);
    assert_eq!(overview["tokens"]["cache_read"], 18_000);
    let cost: Decimal = overview["cost_usd"]
        .as_str()
        .unwrap_or("x")
        .parse()
        .unwrap_or_else(|_| overview["cost_usd"].to_string().parse().unwrap());
    assert_eq!(
        cost,
        Decimal::new(1_000_001, 6) * Decimal::from(20) + Decimal::new(40, 3)
    );
    assert!(overview["p50_ttfb_ms"].as_f64().unwrap() > 0.0);

    let board = &before[1]["rows"];
    assert_eq!(board[0]["key"], uid2.to_string());
    assert_eq!(board[0]["name"], "rich");
    assert_eq!(board[0]["requests"], 20);
    assert_eq!(board[1]["key"], uid.to_string());
    assert_eq!(board[0]["cache_hit_rate"], 0.75);

    let hourly = &before[2];
    assert_eq!(hourly["buckets"].as_array().unwrap().len(), 48);
    let lines = hourly["series"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], uid2.to_string());
    assert_eq!(lines[1]["key"], "other");
    assert!(
        lines
            .iter()
            .all(|l| l["values"].as_array().unwrap().len() == 48)
    );

    let total_window = before[4]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["window"] == "total")
        .cloned()
        .unwrap();
    assert_eq!(total_window["used"], json!("0.04"), "{total_window}");

    // Cleanup deletes every log row; roll-ups stay.
    t.app
        .ctx
        .log_store
        .list_logs(&Default::default())
        .await
        .unwrap();
    delete(t, delete_logs).await;
    assert!(
        t.app
            .ctx
            .log_store
            .list_logs(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(answers(t, &from, &to, uid).await, before);

    // The CSV has the same ranking.
    let r = t
        .admin(
            Method::GET,
            &format!("/api/v1/stats/leaderboard.csv?period=custom&from={from}&to={to}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("rank,key,name,requests"));
    assert!(
        lines[1].starts_with(&format!("1,{uid2},rich,20,")),
        "{text}"
    );
    assert_eq!(lines.len(), 3);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn delete(t: &TestApp, sql: &str) {
    match &t.app.ctx.settings.database {
        claude_code_hub::app::config::Database::Sqlite(url) => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        claude_code_hub::app::config::Database::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

#[tokio::test]
async fn sqlite_statistics_answer_the_same_after_every_log_row_is_deleted() {
    let t = spawn_app(&[]).await;
    the_statistics_survive_log_cleanup(&t, "DELETE FROM request_logs").await;
}

#[tokio::test]
async fn postgres_statistics_answer_the_same_after_every_log_row_is_deleted() {
    let Some(db) = support::postgres::TestDatabase::create("stats_api::cleanup").await else {
        return;
    };
    let t = spawn_app(&[("DSN", db.url.as_str())]).await;
    the_statistics_survive_log_cleanup(&t, "DELETE FROM request_logs").await;
    drop(t);
    db.drop_db().await;
}

#[tokio::test]
async fn bad_parameters_are_named_and_admin_auth_is_required() {
    let t = spawn_app(&[]).await;
    for (path, field) in [
        ("/api/v1/stats/overview?period=decade", "period"),
        (
            "/api/v1/stats/overview?period=custom&to=2026-01-01T00:00:00Z",
            "from",
        ),
        (
            "/api/v1/stats/overview?period=custom&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/api/v1/stats/timeseries?metric=joy", "metric"),
        ("/api/v1/stats/timeseries?bucket=week", "bucket"),
        ("/api/v1/stats/timeseries?group_by=planet", "group_by"),
        ("/api/v1/stats/timeseries?top=0", "top"),
        (
            "/api/v1/stats/timeseries?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=hour",
            "from",
        ),
        ("/api/v1/stats/leaderboard?scope=galaxy", "scope"),
        ("/api/v1/stats/leaderboard?order=errors", "order"),
        ("/api/v1/stats/leaderboard?limit=100000", "limit"),
        ("/api/v1/stats/leaderboard.csv?limit=-1", "limit"),
    ] {
        let (status, body) = t.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let r = t
        .http
        .get(t.url("/api/v1/stats/overview"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Defaults answer on an empty database, every bucket present.
    let s = get(&t, "/api/v1/stats/timeseries").await;
    assert_eq!(s["buckets"].as_array().unwrap().len(), 30);
    assert_eq!(s["series"][0]["key"], "all");
    let o = get(&t, "/api/v1/stats/overview").await;
    assert_eq!(o["requests"], 0);
    let spec = t.http.get(t.url("/openapi.json")).send().await.unwrap();
    let spec: Value = spec.json().await.unwrap();
    for p in ["overview", "timeseries", "leaderboard", "leaderboard.csv"] {
        assert!(
            spec["paths"][format!("/stats/{p}")]["get"].is_object(),
            "{p}"
        );
    }
}

#[tokio::test]
async fn periods_follow_the_zone_set_in_the_settings() {
    let t = spawn_app(&[("TZ", "UTC")]).await;
    let o = get(&t, "/api/v1/stats/overview?period=today").await;
    let utc_from: DateTime<Utc> = o["from"].as_str().unwrap().parse().unwrap();
    assert_eq!(utc_from.timestamp() % 86_400, 0, "{o}");
    let (status, body) = t
        .patch("/api/v1/settings", json!({"timezone": "Asia/Kolkata"}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Kolkata's midnight is 18:30 UTC; periods count whole hours, so today starts at 19:00.
    let o = get(&t, "/api/v1/stats/overview?period=today").await;
    let from: DateTime<Utc> = o["from"].as_str().unwrap().parse().unwrap();
    assert_eq!(from.timestamp() % 86_400, 19 * 3600, "{o}");
    let b = get(&t, "/api/v1/stats/leaderboard?scope=user&period=month").await;
    let from: DateTime<Utc> = b["from"].as_str().unwrap().parse().unwrap();
    assert_eq!(from.timestamp() % 86_400, 19 * 3600, "{b}");
}
