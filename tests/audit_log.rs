//! The admin audit log (issue 14 item 3), end to end: every admin write route in
//! `/openapi.json` leaves exactly one entry; entries carry who, from where, the action, the
//! target and the changed fields with old and new values, secrets masked; logins, failed
//! logins and logouts are recorded; unauthenticated writes are not; the log retention job
//! prunes it with the request logs.

mod support;

use chrono::{Duration, Utc};
use claude_code_hub::domain::audit::{AuditEntry, AuditFilter};
use reqwest::Method;
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};

async fn entries(t: &TestApp) -> Vec<Value> {
    let (s, page) = t.get("/api/v1/audit-logs?limit=1000").await;
    assert_eq!(s, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_admin_write_route_records_exactly_one_entry() {
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
    let mut writes = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if method != "get" {
                writes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(
        writes.len() >= 25,
        "walked {} write operations",
        writes.len()
    );
    for (i, (method, path)) in writes.iter().enumerate() {
        // Ids that name nothing: the call fails (404, 400, …) and must still be recorded.
        let concrete = path
            .replace("{id}", "999999")
            .replace("{model}", "no-such-model");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = t
            .admin(m, &format!("/api/v1{concrete}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status < 500, "{method} {path}: {status}");
        let all = entries(&t).await;
        assert_eq!(
            all.len(),
            i + 1,
            "{method} {path} left {} entries",
            all.len()
        );
        let e = &all[0];
        assert_eq!(e["actor"], "admin", "{e}");
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["target"], concrete.trim_start_matches('/'), "{e}");
        assert!(
            e["route"].as_str().unwrap().starts_with(method.as_str()),
            "{e}"
        );
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
    }
    // Reads are not recorded; neither are writes without the admin token.
    t.get("/api/v1/providers").await;
    let r = t
        .http
        .post(t.url("/api/v1/providers"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(entries(&t).await.len(), writes.len());
}

#[tokio::test]
async fn changes_show_old_and_new_values_with_secrets_masked() {
    let t = spawn_app(&[]).await;
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "first", "provider_type": "claude", "base_url": "http://127.0.0.1:9",
                   "api_key": "sk-very-secret-one", "weight": 3}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    let (s, _) = t
        .patch(
            &format!("/api/v1/providers/{id}"),
            json!({"name": "second", "api_key": "sk-very-secret-two", "weight": 5}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(t.delete(&format!("/api/v1/providers/{id}")).await, 204);

    let all = entries(&t).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("sk-very-secret"),
        "a secret reached the audit log"
    );
    let [delete, update, create] = &all[..] else {
        panic!("{all:?}")
    };
    let change = |e: &Value, field: &str| {
        e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field)
            .cloned()
    };
    assert_eq!(create["action"], "create");
    assert_eq!(create["route"], "POST /providers");
    assert_eq!(change(create, "name").unwrap()["new"], "first");
    assert!(change(create, "name").unwrap().get("old").is_none());

    assert_eq!(update["action"], "update");
    assert_eq!(update["route"], "PATCH /providers/{id}");
    assert_eq!(update["target"], format!("providers/{id}"));
    let name = change(update, "name").unwrap();
    assert_eq!(
        (&name["old"], &name["new"]),
        (&json!("first"), &json!("second"))
    );
    let weight = change(update, "weight").unwrap();
    assert_eq!((&weight["old"], &weight["new"]), (&json!(3), &json!(5)));
    assert!(
        change(update, "provider_type").is_none(),
        "unchanged fields are left out"
    );

    assert_eq!(delete["action"], "delete");
    assert_eq!(change(delete, "name").unwrap()["old"], "second");
    assert!(change(delete, "name").unwrap().get("new").is_none());

    // Filters.
    let (_, page) = t.get("/api/v1/audit-logs?action=update").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = t
        .get(&format!("/api/v1/audit-logs?target=providers/{id}"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, page) = t.get("/api/v1/audit-logs?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next_before_id"].as_i64().unwrap();
    let (_, page) = t
        .get(&format!("/api/v1/audit-logs?limit=2&before_id={next}"))
        .await;
    assert_eq!(page["items"][0]["action"], "create");
}

#[tokio::test]
async fn logins_failed_logins_and_logouts_are_recorded_without_the_credential() {
    let t = spawn_app(&[]).await;
    let (_, u) = t
        .post("/api/v1/users", json!({"name": "boss", "role": "admin"}))
        .await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    let user_key = k["key"].as_str().unwrap().to_string();
    let login = |token: String| {
        let t = &t;
        async move {
            t.http
                .post(t.url("/api/v1/auth/login"))
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(login("wrong-token-123".into()).await.status(), 401);
    let ok = login(t.app.ctx.admin_token.clone()).await;
    assert!(ok.status().is_success());
    let keyed = login(user_key.clone()).await;
    assert!(keyed.status().is_success());
    let cookie = keyed
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A write through the key holder's console session is recorded under that key.
    let r = t
        .http
        .post(t.url("/api/v1/sensitive-words"))
        .header("cookie", &cookie)
        .json(&json!({"word": "w"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = t
        .http
        .post(t.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());

    let all = entries(&t).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&user_key) && !text.contains(&t.app.ctx.admin_token));
    assert!(!text.contains("wrong-token-123"));
    let of_user = format!("user:{}/key:{}", u["id"], k["id"]);
    let actions: Vec<(String, String)> = all
        .iter()
        .rev()
        .filter(|e| {
            e["target"].as_str().unwrap().starts_with("auth") || e["target"] == "sensitive-words"
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("login_failed".to_string(), "anonymous".to_string()),
            ("login".into(), "admin".into()),
            ("login".into(), of_user.clone()),
            ("create".into(), of_user.clone()),
            ("logout".into(), of_user),
        ]
    );
}

#[tokio::test]
async fn log_cleanup_prunes_the_audit_log_with_the_same_cutoff() {
    let t = spawn_app(&[]).await;
    let old = AuditEntry {
        id: 0,
        at: Utc::now() - Duration::days(40),
        actor: "admin".into(),
        ip: None,
        action: "update".into(),
        route: "PATCH /users/{id}".into(),
        target: "users/1".into(),
        status: 200,
        changes: vec![],
    };
    t.app.ctx.audit.insert_audit(&old).await.unwrap();
    let (s, _) = t
        .patch("/api/v1/settings", json!({"log_retention_days": 30}))
        .await;
    assert_eq!(s, 200);
    let (s, body) = t.post("/api/v1/logs/cleanup", json!({})).await;
    assert_eq!(s, 200, "{body}");
    let left = t
        .app
        .ctx
        .audit
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(left.iter().all(|e| e.target != "users/1"), "{left:?}");
    // The settings change and the cleanup itself are recorded and kept.
    assert_eq!(left.len(), 2, "{left:?}");
}
