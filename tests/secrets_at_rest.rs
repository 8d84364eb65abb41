//! Secrets at rest (issue 14 item 2): provider API keys and proxy URLs, webhook URLs, secrets
//! and header values are stored encrypted. The SQLite files and a PostgreSQL dump hold none of
//! them; plaintext rows from before are encrypted at startup; a wrong key stops startup with a
//! clear message and writes nothing; `rotate-secret-key` re-encrypts everything under a new
//! key and the gateway keeps working with it.

mod support;

use claude_code_hub::adapters::secret_box::is_sealed;
use claude_code_hub::adapters::sqlite::SqliteStore;
use claude_code_hub::app::wiring;
use claude_code_hub::ports::store::ConfigStore;
use serde_json::json;
use support::app::{TestApp, test_settings};
use support::fake_upstream::{FakeUpstream, Reply};

const PROVIDER_KEY: &str = "sk-ant-PLAINTEXT-provider-secret-0001";
const PROXY_PASSWORD: &str = "proxypass-PLAINTEXT-0002";
const WEBHOOK_KEY: &str = "WEBHOOK-PLAINTEXT-0003";
const WEBHOOK_SECRET: &str = "SEC-PLAINTEXT-0004";
const HEADER_VALUE: &str = "Bearer HEADER-PLAINTEXT-0005";
const ALL: [&str; 5] = [
    PROVIDER_KEY,
    PROXY_PASSWORD,
    WEBHOOK_KEY,
    WEBHOOK_SECRET,
    HEADER_VALUE,
];

async fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> anyhow::Result<TestApp> {
    support::init_crypto();
    let app = wiring::start(test_settings(dir, extra)).await?;
    let base = format!("http://{}", app.addr);
    Ok(TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
    })
}

/// A provider on `up` and webhook targets, every secret field set; returns a client key.
async fn populate(t: &TestApp, up: &FakeUpstream) -> String {
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": "claude", "base_url": up.url(),
                   "api_key": PROVIDER_KEY}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, p2) = t
        .post(
            "/api/v1/providers",
            json!({"name": "proxied", "provider_type": "claude", "base_url": up.url(),
                   "api_key": "sk-other", "enabled": false,
                   "proxy_url": format!("http://user:{PROXY_PASSWORD}@127.0.0.1:9")}),
        )
        .await;
    assert_eq!(s, 201, "{p2}");
    let (s, w) = t
        .post(
            "/api/v1/notifications/targets",
            json!({"name": "wecom", "kind": "wecom",
                   "url": format!("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WEBHOOK_KEY}")}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let (s, w) = t
        .post(
            "/api/v1/notifications/targets",
            json!({"name": "feishu", "kind": "feishu", "secret": WEBHOOK_SECRET,
                   "url": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let (s, w) = t
        .post(
            "/api/v1/notifications/targets",
            json!({"name": "custom", "kind": "custom", "url": "https://hooks.example.com/x",
                   "headers": {"Authorization": HEADER_VALUE}}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let (_, u) = t.post("/api/v1/users", json!({"name": "u"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    k["key"].as_str().unwrap().to_string()
}

/// A request through the gateway reaches the provider with its real key.
async fn provider_gets_its_key(t: &TestApp, up: &FakeUpstream, key: &str) {
    up.push(Reply::text("ok"));
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = up.last_request().unwrap();
    assert_eq!(seen.header("x-api-key"), Some(PROVIDER_KEY));
}

fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn assert_absent(haystack: &[u8], where_: &str) {
    for secret in ALL {
        let found = haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(!found, "{secret} is readable in {where_}");
    }
}

#[tokio::test]
async fn the_sqlite_files_hold_no_secret_and_the_gateway_still_uses_them() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]).await.unwrap();
    let key = populate(&t, &up).await;
    provider_gets_its_key(&t, &up, &key).await;
    // Answers never show them either.
    for path in ["/api/v1/providers", "/api/v1/notifications/targets"] {
        let (_, v) = t.get(path).await;
        assert_absent(v.to_string().as_bytes(), path);
    }
    t.app.shutdown().await.unwrap();
    let files = files_under(dir.path());
    assert!(files.iter().any(|(p, _)| p.ends_with("cch.db")));
    for (path, bytes) in &files {
        assert_absent(bytes, path);
    }
    // Restarted on the same files, it reads them back.
    let t = start(dir.path(), &[]).await.unwrap();
    provider_gets_its_key(&t, &up, &key).await;
    t.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_postgres_dump_holds_no_secret() {
    let Some(db) = support::postgres::TestDatabase::create("secrets_at_rest_pg").await else {
        return;
    };
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[("DSN", db.url.as_str())])
        .await
        .unwrap();
    let key = populate(&t, &up).await;
    provider_gets_its_key(&t, &up, &key).await;
    t.app.shutdown().await.unwrap();
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists());
    let dump: Vec<u8> = match pg_dump {
        Some(bin) => {
            let out = std::process::Command::new(bin)
                .arg("--data-only")
                .arg(&db.url)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
        None => {
            // Every row of every table as text.
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut all = Vec::new();
            for table in tables {
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{table}\" t"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                for r in rows {
                    all.extend_from_slice(r.as_bytes());
                }
            }
            pool.close().await;
            all
        }
    };
    assert!(dump.len() > 1000, "the dump has the data");
    assert!(String::from_utf8_lossy(&dump).contains("enc:v1:"));
    assert_absent(&dump, "the PostgreSQL dump");
    db.drop_db().await;
}

#[tokio::test]
async fn plaintext_rows_from_before_are_encrypted_at_startup() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]).await.unwrap();
    let key = populate(&t, &up).await;
    t.app.shutdown().await.unwrap();
    // Put one secret back in plaintext, as a version without encryption stored it.
    let url = format!("sqlite://{}", dir.path().join("cch.db").display());
    let raw = SqliteStore::connect(&url).await.unwrap();
    let mut p = raw
        .list_providers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == "p")
        .unwrap();
    assert!(is_sealed(&p.api_key));
    p.api_key = PROVIDER_KEY.into();
    raw.update_provider(&p).await.unwrap();
    raw.pool().close().await;

    let t = start(dir.path(), &[]).await.unwrap();
    provider_gets_its_key(&t, &up, &key).await;
    t.app.shutdown().await.unwrap();
    let raw = SqliteStore::connect(&url).await.unwrap();
    let p = raw.get_provider(p.id).await.unwrap();
    assert!(is_sealed(&p.api_key), "sealed at startup: {}", p.api_key);
    raw.pool().close().await;
}

/// Every provider and target row as stored (sealed values included).
async fn stored_rows(url: &str) -> Vec<String> {
    use claude_code_hub::ports::notifications::NotificationStore;
    let raw = SqliteStore::connect(url).await.unwrap();
    let mut out: Vec<String> = raw
        .list_providers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| format!("{p:?}"))
        .collect();
    out.extend(
        raw.list_targets()
            .await
            .unwrap()
            .into_iter()
            .map(|t| format!("{t:?}")),
    );
    raw.pool().close().await;
    out
}

#[tokio::test]
async fn a_wrong_key_stops_startup_with_a_clear_message_and_changes_nothing() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), &[]).await.unwrap();
    populate(&t, &up).await;
    t.app.shutdown().await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("cch.db").display());
    let before = stored_rows(&url).await;
    let other = claude_code_hub::adapters::secret_box::generate_key();
    let err = start(dir.path(), &[("CCH_SECRET_KEY", other.as_str())])
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("CCH_SECRET_KEY"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert!(
        stored_rows(&url).await == before,
        "the stored rows are untouched"
    );
    let e = start(dir.path(), &[("CCH_SECRET_KEY", "not-base64!")])
        .await
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("32 random bytes"), "{e:#}");
}

#[tokio::test]
async fn rotation_re_encrypts_everything_under_a_new_key() {
    let up = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The key from the data folder (generated on first start), as a single-binary install has.
    let no_env_key = [("CCH_SECRET_KEY", "")];
    let t = start(dir.path(), &no_env_key).await.unwrap();
    let key = populate(&t, &up).await;
    t.app.shutdown().await.unwrap();
    let key_file = dir.path().join("secret_key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let url = format!("sqlite://{}", dir.path().join("cch.db").display());
    let stored = |url: String| async move {
        let raw = SqliteStore::connect(&url).await.unwrap();
        let keys: Vec<String> = raw
            .list_providers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.api_key)
            .collect();
        raw.pool().close().await;
        keys
    };
    let before = stored(url.clone()).await;

    wiring::rotate_secret_key(test_settings(dir.path(), &no_env_key))
        .await
        .unwrap();
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!dir.path().join("secret_key.next").exists());
    let after = stored(url).await;
    for (b, a) in before.iter().zip(&after) {
        assert!(is_sealed(a) && a != b);
        assert_ne!(
            claude_code_hub::adapters::secret_box::Keyring::key_id_of(a),
            claude_code_hub::adapters::secret_box::Keyring::key_id_of(b)
        );
    }
    // It starts with the new key alone and serves with the secrets intact.
    let t = start(dir.path(), &no_env_key).await.unwrap();
    provider_gets_its_key(&t, &up, &key).await;
    let (_, targets) = t.get("/api/v1/notifications/targets").await;
    assert_eq!(targets.as_array().map(Vec::len), Some(3), "{targets}");
    t.app.shutdown().await.unwrap();
    // The old key no longer opens anything.
    let err = start(dir.path(), &[("CCH_SECRET_KEY", old_key.trim())])
        .await
        .err()
        .expect("the old key is refused");
    assert!(format!("{err:#}").contains("cannot be decrypted"));
}
