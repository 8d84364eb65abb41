//! Issue 15, item 6: `cch export > config.json` on SQLite and `cch import config.json` on
//! PostgreSQL bring over providers, users, keys (hashes), prices, error rules and settings; a
//! second import changes nothing, and a key made on the first instance works on the second.

mod support;

use serde_json::{Value, json};
use support::bin::{ADMIN_TOKEN, spawn};
use support::fake_upstream::{FakeUpstream, Reply};
use support::postgres::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_cch");

async fn run(env: &[(&str, String)], args: &[&str]) -> (bool, String, String) {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("CCH_SECRET_KEY", support::bin::SECRET_KEY)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn a_configuration_moves_from_sqlite_to_postgres_and_its_keys_keep_working() {
    let Some(db) = TestDatabase::create("config_export_import").await else {
        return;
    };
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("moved"));
    let source = spawn(BIN, &[]).await;
    let (_, key) = source.provider_and_key(&up.url()).await;
    let r = source
        .http
        .put(source.url("/api/v1/prices/my-model"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"input_per_mtok": "1.5", "output_per_mtok": "7"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    source
        .admin_post(
            "/api/v1/error-rules",
            json!({"pattern": "team quota", "match_kind": "contains",
                   "class": "non_retryable_client_error", "override_message": "ask ops"}),
        )
        .await;
    source
        .admin_post(
            "/api/v1/sensitive-words",
            json!({"word": "机密", "match_type": "contains", "note": "confidential"}),
        )
        .await;
    let data_dir = source.dir.path().join("data").display().to_string();
    let (ok, exported, err) = run(&[("DATA_DIR", data_dir)], &["export"]).await;
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["format"], "cch-config");
    assert!(
        !exported.contains(&key),
        "plaintext keys never leave the database"
    );
    assert!(
        exported.contains("sk-up-secret"),
        "provider secrets are part of the backup"
    );
    let file = source.dir.path().join("config.json");
    std::fs::write(&file, &exported).unwrap();
    let file = file.display().to_string();

    let target = [("DSN", db.url.clone())];
    let (ok, dry, err) = run(&target, &["import", &file, "--dry-run"]).await;
    assert!(ok, "{dry}\n{err}");
    assert!(dry.contains("providers: 1 created"), "{dry}");
    let (ok, first, err) = run(&target, &["import", &file]).await;
    eprintln!("{first}");
    assert!(ok, "{first}\n{err}");
    for line in [
        "providers: 1 created, 0 updated, 0 unchanged",
        "users: 1 created, 0 updated, 0 unchanged",
        "keys: 1 created, 0 updated, 0 unchanged",
        "prices: 1 created",
        "error_rules: 1 created",
        "sensitive_words: 1 created",
    ] {
        assert!(first.contains(line), "missing '{line}' in:\n{first}");
    }
    let (ok, second, err) = run(&target, &["import", &file]).await;
    assert!(ok, "{second}\n{err}");
    assert!(!second.contains(" 1 created"), "{second}");
    assert!(!second.contains("changes that were made"), "{second}");
    assert!(
        second.contains("keys: 0 created, 0 updated, 1 unchanged"),
        "{second}"
    );

    // The same export from the target equals the source's, ids and times aside.
    let (ok, again, err) = run(&target, &["export"]).await;
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["providers"][0]["name"], doc["providers"][0]["name"]);
    assert_eq!(
        again["users"][0]["keys"][0]["key_hash"],
        doc["users"][0]["keys"][0]["key_hash"]
    );
    assert_eq!(again["prices"], doc["prices"]);

    drop(source);
    let moved = spawn(BIN, &[("DSN", db.url.as_str())]).await;
    let r = moved
        .http
        .post(moved.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("moved"));
    let rules: Value = moved
        .http
        .get(moved.url("/api/v1/error-rules"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(rules.to_string().contains("ask ops"), "{rules}");
    drop(moved);
    db.drop_db().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.json");
    std::fs::write(&file, r#"{"format": "other", "version": 1, "providers": [], "users": [], "prices": [], "error_rules": [], "settings": []}"#).unwrap();
    let env = [("DATA_DIR", dir.path().join("data").display().to_string())];
    let (ok, _, err) = run(&env, &["import", &file.display().to_string()]).await;
    assert!(!ok);
    assert!(err.contains("not a cch configuration file"), "{err}");
    let (ok, _, err) = run(&env, &["import", "cch-ts"]).await;
    assert!(!ok);
    assert!(err.contains("needs --from"), "{err}");
}
