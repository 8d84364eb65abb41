//! The admin API end to end over HTTP: authentication on every route, CRUD, validation errors
//! naming the field, keys shown once.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};

fn provider_body(name: &str) -> Value {
    json!({"name": name, "provider_type": "claude", "base_url": "https://api.anthropic.com", "api_key": "sk-ant-secret-123456"})
}

#[tokio::test]
async fn health_docs_and_spec_are_served() {
    let t = spawn_app(&[]).await;
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = t.http.get(t.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger"), "docs page is Swagger UI");
    assert!(
        !html.contains("cdn.jsdelivr") && !html.contains("unpkg.com"),
        "no CDN assets"
    );
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
        "/providers",
        "/providers/{id}",
        "/users",
        "/users/{id}",
        "/users/{id}/keys",
        "/keys/{id}",
    ] {
        assert!(paths.contains_key(p), "spec lists {p}: {:?}", paths.keys());
    }
    let r = t.http.get(t.url("/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["redis"], "not_configured");
}

#[tokio::test]
async fn every_route_in_the_spec_requires_the_admin_token() {
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
    let server = spec["servers"][0]["url"].as_str().unwrap_or("");
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "1");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = t.url(&format!("{server}{concrete}"));
            for auth in [None, Some("wrong-token"), Some("")] {
                let mut req = t.http.request(m.clone(), &url).json(&json!({}));
                if let Some(a) = auth {
                    req = req.bearer_auth(a);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 401, "{method} {path} with {auth:?}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["type"], "unauthorized", "{method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "walked {checked} operations");
}

#[tokio::test]
async fn provider_crud_round_trips_every_field_and_masks_the_secret() {
    let t = spawn_app(&[]).await;
    let full = json!({
        "name": "relay-1", "provider_type": "claude-auth", "base_url": "https://relay.example.com/api",
        "api_key": "sk-relay-abcdefgh9876", "description": "backup relay", "enabled": false,
        "priority": 3, "weight": 40, "cost_multiplier": "0.75", "group_tag": "team-a,team-b",
        "allowed_models": ["claude-sonnet-4-5"], "model_redirects": {"claude-sonnet-4-5": "sonnet-latest"},
        "extra_client_formats": ["openai"], "proxy_url": "socks5://u:p@127.0.0.1:1080",
        "proxy_fallback_to_direct": true, "first_byte_timeout_ms": 15000, "idle_timeout_ms": 20000,
        "request_timeout_ms": 90000, "failure_threshold": 7, "open_duration_ms": 120000,
        "half_open_success_threshold": 3, "max_retry_attempts": 4,
        "limit_5h_usd": 5.5, "limit_daily_usd": "20", "daily_reset_mode": "rolling", "daily_reset_time": "08:30",
        "limit_weekly_usd": 100, "limit_monthly_usd": 300, "limit_total_usd": 1000, "limit_concurrent_sessions": 9
    });
    let (status, p) = t.post("/api/v1/providers", full).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["api_key"], "****9876");
    assert_eq!(p["proxy_url"], "socks5://u:****@127.0.0.1:1080");
    assert_eq!(p["cost_multiplier"], "0.75");
    assert_eq!(p["limit_5h_usd"], "5.5");
    assert_eq!(p["daily_reset_mode"], "rolling");
    assert_eq!(p["model_redirects"]["claude-sonnet-4-5"], "sonnet-latest");
    assert_eq!(p["limit_concurrent_sessions"], 9);
    let (status, got) = t.get(&format!("/api/v1/providers/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, p);
    let stored = t.app.ctx.config_store.get_provider(id).await.unwrap();
    assert_eq!(stored.api_key, "sk-relay-abcdefgh9876");

    let (status, patched) = t
        .patch(
            &format!("/api/v1/providers/{id}"),
            json!({"weight": 5, "proxy_url": null, "limit_daily_usd": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["weight"], 5);
    assert_eq!(patched["proxy_url"], Value::Null);
    assert_eq!(patched["limit_daily_usd"], Value::Null);
    assert_eq!(patched["priority"], 3, "untouched fields are kept");

    let (status, list) = t.get("/api/v1/providers").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(t.delete(&format!("/api/v1/providers/{id}")).await, 204);
    assert_eq!(t.get(&format!("/api/v1/providers/{id}")).await.0, 404);
    assert_eq!(t.delete(&format!("/api/v1/providers/{id}")).await, 404);
}

async fn expect_400(t: &TestApp, method: Method, path: &str, body: &str, field: Option<&str>) {
    let r = t
        .admin(method.clone(), path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{method} {path} {body}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request", "{v}");
    if let Some(f) = field {
        assert_eq!(v["error"]["field"], f, "{body} -> {v}");
    }
}

#[tokio::test]
async fn bad_provider_input_is_rejected_naming_the_field_and_nothing_is_written() {
    let t = spawn_app(&[]).await;
    let base = provider_body("p");
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    let p = "/api/v1/providers";
    expect_400(&t, Method::POST, p, "{not json", None).await;
    expect_400(&t, Method::POST, p, "", None).await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("weight", json!("heavy")),
        Some("weight"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("weight", json!(101)),
        Some("weight"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("priority", json!(-1)),
        Some("priority"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("provider_type", json!("openai")),
        Some("provider_type"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("base_url", json!("not a url")),
        Some("base_url"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("base_url", json!("ftp://x.example")),
        Some("base_url"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("proxy_url", json!("127.0.0.1:1080")),
        Some("proxy_url"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("name", json!("x".repeat(65))),
        Some("name"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("daily_reset_time", json!("25:00")),
        Some("daily_reset_time"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("daily_reset_mode", json!("weekly")),
        Some("daily_reset_mode"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("limit_daily_usd", json!(-3)),
        Some("limit_daily_usd"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("failure_threshold", json!(0)),
        Some("failure_threshold"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &with("bogus_field", json!(1)),
        Some("bogus_field"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        p,
        &json!({"name": "p"}).to_string(),
        Some("provider_type"),
    )
    .await;
    let (_, list) = t.get(p).await;
    assert_eq!(list, json!([]), "nothing half-written");

    let (status, created) = t.post(p, base.clone()).await;
    assert_eq!(status, 201);
    let (status, dup) = t.post(p, base.clone()).await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["error"]["type"], "conflict");
    let id = created["id"].as_i64().unwrap();
    expect_400(
        &t,
        Method::PATCH,
        &format!("{p}/{id}"),
        r#"{"weight": 500}"#,
        Some("weight"),
    )
    .await;
    let (_, unchanged) = t.get(&format!("{p}/{id}")).await;
    assert_eq!(unchanged["weight"], 1);
    let r = t
        .admin(Method::GET, "/api/v1/providers/abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request");
    assert_eq!(
        t.patch("/api/v1/providers/999", json!({"weight": 2}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn users_and_keys_lifecycle_with_plaintext_shown_once() {
    let t = spawn_app(&[]).await;
    let (status, u) = t
        .post("/api/v1/users", json!({"name": "alice", "provider_group": "team-a", "rpm_limit": 30, "limit_daily_usd": "12.5", "expires_at": "2030-01-01T00:00:00Z", "note": "dev"}))
        .await;
    assert_eq!(status, 201, "{u}");
    let uid = u["id"].as_i64().unwrap();
    assert_eq!(u["role"], "user");
    assert_eq!(u["rpm_limit"], 30);
    assert_eq!(
        t.post("/api/v1/users", json!({"name": "alice"})).await.0,
        409
    );
    expect_400(
        &t,
        Method::POST,
        "/api/v1/users",
        r#"{"name":"bob","role":"root"}"#,
        Some("role"),
    )
    .await;
    expect_400(
        &t,
        Method::POST,
        "/api/v1/users",
        r#"{"name":"bob","rpm_limit":0}"#,
        Some("rpm_limit"),
    )
    .await;

    let (status, k) = t
        .post(
            &format!("/api/v1/users/{uid}/keys"),
            json!({"name": "laptop", "limit_5h_usd": 2}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let plaintext = k["key"].as_str().unwrap().to_string();
    assert!(
        plaintext.starts_with("cch_") && plaintext.len() >= 36,
        "{plaintext}"
    );
    assert!(plaintext[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    let kid = k["id"].as_i64().unwrap();
    assert_eq!(
        k["masked_key"],
        format!("cch_…{}", &plaintext[plaintext.len() - 4..])
    );

    let (status, list) = t.get(&format!("/api/v1/users/{uid}/keys")).await;
    assert_eq!(status, 200);
    assert!(
        !list.to_string().contains(&plaintext),
        "list never shows the key"
    );
    assert_eq!(list[0]["masked_key"], k["masked_key"]);
    let (_, one) = t.get(&format!("/api/v1/keys/{kid}")).await;
    assert!(!one.to_string().contains(&plaintext));
    let stored = t.app.ctx.config_store.get_key(kid).await.unwrap();
    assert_eq!(
        stored.key_hash,
        claude_code_hub::domain::api_key::hash_key(&plaintext)
    );
    assert!(
        t.app
            .ctx
            .snapshot
            .get()
            .keys_by_hash
            .contains_key(&stored.key_hash),
        "snapshot refreshed on write"
    );

    let (status, disabled) = t
        .patch(&format!("/api/v1/keys/{kid}"), json!({"enabled": false}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(disabled["enabled"], false);
    assert!(!t.app.ctx.snapshot.get().keys_by_hash[&stored.key_hash].enabled);
    assert_eq!(
        t.post("/api/v1/users/999/keys", json!({"name": "x"}))
            .await
            .0,
        404
    );
    assert_eq!(t.get("/api/v1/users/999/keys").await.0, 404);

    assert_eq!(t.delete(&format!("/api/v1/users/{uid}")).await, 204);
    assert_eq!(
        t.get(&format!("/api/v1/keys/{kid}")).await.0,
        404,
        "keys go with their user"
    );
    assert!(t.app.ctx.snapshot.get().keys_by_hash.is_empty());
}
