//! Issue 16 item 9: admin input that used to be accepted and must now be refused with a 400
//! naming the field, the same on SQLite and PostgreSQL (control characters, `null` on required
//! patch fields, non-price-list imports), and credentials in `base_url` masked on the way out.

mod support;

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::postgres::TestDatabase;

fn provider(name: &str) -> Value {
    json!({"name": name, "provider_type": "claude", "base_url": "https://api.anthropic.com", "api_key": "sk-ant-secret-123456"})
}

fn with(base: &Value, k: &str, v: Value) -> Value {
    let mut b = base.clone();
    b[k] = v;
    b
}

async fn expect_400(t: &TestApp, status_body: (u16, Value), field: &str, what: &str) {
    let (status, body) = status_body;
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
    let _ = t;
}

/// CR/LF in a secret or URL, NUL in names and tags: refused on create and on patch, nothing
/// stored.
async fn control_characters_case(t: &TestApp) {
    let base = provider("p");
    for (field, bad) in [
        ("api_key", "sk-ant-secret\r\nx-evil: 1"),
        ("api_key", "sk-ant-secret\n123456"),
        ("base_url", "https://api.anthropic.com/\r\nx"),
        ("name", "p\u{0}q"),
        ("group_tag", "team\u{0}a"),
        ("description", "d\u{0}"),
    ] {
        let r = t
            .post("/api/v1/providers", with(&base, field, json!(bad)))
            .await;
        expect_400(t, r, field, &format!("create {field}={bad:?}")).await;
    }
    let r = t
        .post(
            "/api/v1/providers",
            with(&base, "base_url", json!("ftp://host/")),
        )
        .await;
    expect_400(t, r, "base_url", "ftp base_url").await;
    let (s, list) = t.get("/api/v1/providers").await;
    assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(0)), "{list}");

    let (s, created) = t.post("/api/v1/providers", base.clone()).await;
    assert_eq!(s, 201, "{created}");
    let path = format!("/api/v1/providers/{}", created["id"]);
    for (field, bad) in [
        ("api_key", "sk\r\nx"),
        ("base_url", "https://h/\nx"),
        ("name", "\u{0}"),
    ] {
        let r = t.patch(&path, json!({ field: bad })).await;
        expect_400(t, r, field, &format!("patch {field}")).await;
    }

    let r = t.post("/api/v1/users", json!({"name": "a\u{0}b"})).await;
    expect_400(t, r, "name", "user name").await;
    let r = t
        .post(
            "/api/v1/users",
            json!({"name": "u", "provider_group": "g\u{0}"}),
        )
        .await;
    expect_400(t, r, "provider_group", "user group").await;
    let (s, user) = t.post("/api/v1/users", json!({"name": "u"})).await;
    assert_eq!(s, 201, "{user}");
    let r = t
        .post(
            &format!("/api/v1/users/{}/keys", user["id"]),
            json!({"name": "k\u{0}"}),
        )
        .await;
    expect_400(t, r, "name", "key name").await;
    let r = t
        .post("/api/v1/error-rules", json!({"pattern": "x\u{0}y"}))
        .await;
    expect_400(t, r, "pattern", "error rule pattern").await;
    let r = t
        .admin(reqwest::Method::PUT, "/api/v1/prices/bad%00model")
        .json(&json!({"input_per_mtok": "1", "output_per_mtok": "2"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    expect_400(t, (status, body), "model", "price model").await;
}

/// `null` on a field that cannot be cleared is a 400 naming it, and changes nothing.
async fn null_on_required_case(t: &TestApp) {
    let (s, created) = t.post("/api/v1/providers", provider("n")).await;
    assert_eq!(s, 201, "{created}");
    let path = format!("/api/v1/providers/{}", created["id"]);
    for field in ["name", "base_url", "api_key", "provider_type"] {
        let r = t.patch(&path, json!({ field: null, "weight": 7 })).await;
        expect_400(t, r, field, &format!("null {field}")).await;
    }
    let (_, after) = t.get(&path).await;
    assert_eq!(
        after["weight"], created["weight"],
        "nothing changed: {after}"
    );
    let (_, user) = t.post("/api/v1/users", json!({"name": "nu"})).await;
    let r = t
        .patch(
            &format!("/api/v1/users/{}", user["id"]),
            json!({"name": null}),
        )
        .await;
    expect_400(t, r, "name", "user name null").await;
}

#[tokio::test]
async fn control_characters_in_admin_text_are_400_naming_the_field() {
    let t = spawn_app(&[]).await;
    control_characters_case(&t).await;
}

#[tokio::test]
async fn control_characters_in_admin_text_are_400_on_postgres() {
    let Some(db) = TestDatabase::create("control_characters_in_admin_text_pg").await else {
        return;
    };
    let t = spawn_app(&[("DSN", db.url.as_str())]).await;
    control_characters_case(&t).await;
    drop(t);
    db.drop_db().await;
}

#[tokio::test]
async fn patch_null_on_a_required_field_is_400_naming_it() {
    let t = spawn_app(&[]).await;
    null_on_required_case(&t).await;
}

#[tokio::test]
async fn credentials_in_base_url_are_masked_like_proxy_credentials() {
    let t = spawn_app(&[]).await;
    let body = with(
        &with(
            &provider("c"),
            "base_url",
            json!("http://user:hunter2pw@upstream.example/"),
        ),
        "proxy_url",
        json!("http://puser:proxypw@proxy.example:8080"),
    );
    let (s, created) = t.post("/api/v1/providers", body).await;
    assert_eq!(s, 201, "{created}");
    let (_, list) = t.get("/api/v1/providers").await;
    let (_, one) = t.get(&format!("/api/v1/providers/{}", created["id"])).await;
    for v in [&created, &list[0], &one] {
        let text = v.to_string();
        assert!(
            !text.contains("hunter2pw"),
            "base_url password leaked: {text}"
        );
        assert!(!text.contains("proxypw"), "proxy password leaked: {text}");
        assert_eq!(v["base_url"], "http://user:****@upstream.example/", "{v}");
    }
}

#[tokio::test]
async fn price_import_of_something_that_is_not_a_price_list_is_400() {
    let t = spawn_app(&[]).await;
    for bad in [
        json!({}),
        json!({"hello": "world"}),
        json!({"sample_spec": {"input_cost_per_token": 0.0}}),
        json!({"gpt-x": {"max_tokens": 10}}),
        json!([1, 2, 3]),
    ] {
        let (s, b) = t.post("/api/v1/prices/import", bad.clone()).await;
        assert_eq!(s, 400, "{bad} -> {b}");
    }
    // A LiteLLM-shaped list still imports, skipping entries without prices.
    let ok = json!({
        "sample_spec": {"input_cost_per_token": 0.0},
        "my-model": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002},
        "embed-only": {"input_cost_per_token": 0.000001}
    });
    let (s, b) = t.post("/api/v1/prices/import", ok).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["imported"], 1, "{b}");
}
