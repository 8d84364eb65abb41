//! Key holders' own request log (`GET /v1/usage/logs`), the CSV export of the admin log, and
//! the rate-limit statistics after a burst over an RPM limit.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

const MODEL: &str = "claude-sonnet-4-5";

async fn setup_user(
    t: &TestApp,
    up: &FakeUpstream,
    name: &str,
    rpm: Option<i64>,
) -> (i64, i64, String) {
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-up"}),
        )
        .await;
    assert!(s == 201 || s == 409, "{p}");
    let mut user = json!({"name": name});
    if let Some(r) = rpm {
        user["rpm_limit"] = json!(r);
    }
    let (s, u) = t.post("/api/v1/users", user).await;
    assert_eq!(s, 201, "{u}");
    let uid = u["id"].as_i64().unwrap();
    let (s, k) = t
        .post(
            &format!("/api/v1/users/{uid}/keys"),
            json!({"name": format!("{name}-key")}),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    (
        uid,
        k["id"].as_i64().unwrap(),
        k["key"].as_str().unwrap().to_string(),
    )
}

async fn send(t: &TestApp, key: &str) -> u16 {
    t.http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": MODEL, "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until the admin log holds `n` rows.
async fn wait_rows(t: &TestApp, n: usize) {
    for _ in 0..200 {
        let (_, logs) = t.get("/api/v1/logs?limit=1000").await;
        if logs["data"].as_array().map_or(0, Vec::len) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the log never reached {n} rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_burst_is_counted_and_logs_are_readable_and_exportable() {
    burst_counted_and_logs_readable(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_burst_is_counted_on_postgres() {
    let Some(db) = support::postgres::TestDatabase::create("refusals_postgres").await else {
        return;
    };
    burst_counted_and_logs_readable(&[("DSN", db.url.as_str())]).await;
    db.drop_db().await;
}

async fn burst_counted_and_logs_readable(extra: &[(&str, &str)]) {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("ok").usage(10, 5, 0, 0));
    let t = spawn_app(extra).await;
    let (uid, kid, key) = setup_user(&t, &up, "bursty", Some(3)).await;
    let (_, _, calm_key) = setup_user(&t, &up, "calm", None).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(send(&t, &key).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(send(&t, &calm_key).await, 200);
    wait_rows(&t, 11).await;

    // Every refusal is a log row naming the limit.
    let (_, logs) = t.get("/api/v1/logs?status_class=4").await;
    let rows = logs["data"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for r in rows {
        let msg = r["error_message"].as_str().unwrap();
        assert!(msg.starts_with("rate limited (rpm, user): "), "{msg}");
    }

    let (s, stats) = t.get("/api/v1/stats/rate-limits?period=today").await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["total_refused"], 7);
    let rpm = stats["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "rpm")
        .unwrap()
        .clone();
    assert_eq!(rpm["refused"], 7);
    assert_eq!(stats["by_kind"].as_array().unwrap().len(), 7);
    assert_eq!(stats["top_users"].as_array().unwrap().len(), 1);
    assert_eq!(stats["top_users"][0]["id"], uid);
    assert_eq!(stats["top_users"][0]["name"], "bursty");
    assert_eq!(stats["top_keys"][0]["id"], kid);
    assert_eq!(stats["top_keys"][0]["name"], "bursty-key");
    let (s, y) = t.get("/api/v1/stats/rate-limits?period=yesterday").await;
    assert_eq!(s, 200);
    assert_eq!(y["total_refused"], 0);
    let (s, bad) = t.get("/api/v1/stats/rate-limits?period=decade").await;
    assert_eq!(s, 400, "{bad}");
    assert_eq!(bad["error"]["field"], "period");

    // The key holder sees only their key's rows, paginated, without provider details.
    let own = |q: &str| {
        let url = t.url(&format!("/v1/usage/logs{q}"));
        let key = key.clone();
        let http = t.http.clone();
        async move {
            let r = http.get(url).header("x-api-key", key).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, page1) = own("?limit=4").await;
    assert_eq!(s, 200, "{page1}");
    let data = page1["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert!(data[0].get("provider_chain").is_none() && data[0].get("provider_id").is_none());
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = own(&format!("?limit=4&cursor={cursor}")).await;
    let (_, page3) = own(&format!(
        "?limit=4&cursor={}",
        page2["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 2);
    assert!(page3["next_cursor"].is_null());
    let (s, _) = own("?limit=0").await;
    assert_eq!(s, 400);
    let (s, _) = own("?bogus=1").await;
    assert_eq!(s, 400);
    let r = t.http.get(t.url("/v1/usage/logs")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // CSV export: header plus every row, filters applied.
    let r = t
        .admin(reqwest::Method::GET, "/api/v1/logs/export")
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
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("request-logs.csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 12, "{csv}");
    assert!(lines[0].starts_with("id,request_id,created_at,user_id,key_id"));
    let r = t
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/logs/export?key_id={kid}&status_class=4"),
        )
        .send()
        .await
        .unwrap();
    let csv = r.text().await.unwrap();
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 8);
    assert!(csv.contains("rate limited (rpm, user)"));
    let r = t
        .admin(reqwest::Method::GET, "/api/v1/logs/export?status_class=9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn export_streams_more_than_one_page() {
    let t = spawn_app(&[]).await;
    let rows: Vec<_> = (0..2500)
        .map(|i| {
            let mut r = support::log_rows::minimal(&format!("r{i:05}"));
            r.error_message = Some(if i == 7 {
                "=HYPERLINK(\"x\")".into()
            } else {
                "a,b".into()
            });
            r
        })
        .collect();
    t.app.ctx.log_store.insert_logs(&rows).await.unwrap();
    let r = t
        .admin(reqwest::Method::GET, "/api/v1/logs/export")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2501);
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "formula neutralised"
    );
    assert!(csv.contains(",\"a,b\","));
    t.app.shutdown().await.unwrap();
}
