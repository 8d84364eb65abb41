//! Spawning the whole application in-process on `127.0.0.1:0` for integration tests.

use std::collections::HashMap;

use claude_code_hub::app::config::Settings;
use claude_code_hub::app::wiring::{self, RunningApp};

/// Admin token used by test apps.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running app plus what a test needs to talk to it.
pub struct TestApp {
    /// The running server.
    pub app: RunningApp,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A plain HTTP client.
    pub http: reqwest::Client,
    /// Keeps the data folder alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An admin request builder with the token set.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(TEST_ADMIN_TOKEN)
    }

    /// POSTs JSON as admin and returns (status, body).
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .admin(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// GETs as admin and returns (status, body).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// PATCHes JSON as admin and returns (status, body).
    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .admin(reqwest::Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Creates a user from `user` (the admin API body) with one key named `k`, asserting both
    /// are created; returns `(user_id, key_id, key plaintext)`.
    pub async fn user_with_key(&self, user: serde_json::Value) -> (i64, i64, String) {
        let (s, u) = self.post("/api/v1/users", user).await;
        assert_eq!(s, 201, "{u}");
        let uid = u["id"].as_i64().unwrap();
        let (s, k) = self
            .post(
                &format!("/api/v1/users/{uid}/keys"),
                serde_json::json!({"name": "k"}),
            )
            .await;
        assert_eq!(s, 201, "{k}");
        (
            uid,
            k["id"].as_i64().unwrap(),
            k["key"].as_str().unwrap().to_string(),
        )
    }

    /// DELETEs as admin and returns the status.
    pub async fn delete(&self, path: &str) -> u16 {
        self.admin(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// The secret key test instances share (32 bytes, base64).
pub const TEST_SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Settings for a test app: SQLite in a temp folder unless `extra` overrides `DSN`.
pub fn test_settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("APP_HOST".into(), "127.0.0.1".into());
    vars.insert("APP_PORT".into(), "0".into());
    vars.insert("ADMIN_TOKEN".into(), TEST_ADMIN_TOKEN.into());
    // One key for every test instance, so instances sharing a database read each other's
    // sealed secrets (as production instances share CCH_SECRET_KEY).
    vars.insert("CCH_SECRET_KEY".into(), TEST_SECRET_KEY.into());
    vars.insert("DATA_DIR".into(), dir.display().to_string());
    vars.insert(
        "DSN".into(),
        format!("sqlite://{}", dir.join("cch.db").display()),
    );
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::from_map(&vars).expect("valid test settings")
}

/// Starts the app with SQLite in a fresh temp folder plus `extra` variables.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    super::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path(), extra);
    let app = wiring::start(settings).await.expect("app starts");
    let base = format!("http://{}", app.addr);
    TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        dir,
    }
}
