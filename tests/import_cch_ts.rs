//! Issue 15, item 5: `cch import cch-ts --from postgres://…` against a fixture database built
//! from the original's schema description (tests/fixtures/cch_ts_*.sql): the dry run writes
//! nothing and lists what cannot be mapped, the import creates what it listed, a second import
//! creates nothing, and a client key of the original works against cch unchanged.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use support::bin::{ADMIN_TOKEN, CchProcess, spawn};
use support::fake_upstream::{FakeUpstream, Reply};
use support::postgres::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_cch");
const ALICE_KEY: &str = "sk-0123456789abcdef0123456789abcdef";

/// Runs `cch import cch-ts` against the running instance's data folder; returns (success,
/// stdout, stderr).
async fn import(cch: &CchProcess, from: &str, dry_run: bool) -> (bool, String, String) {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", cch.dir.path().join("data"))
        .env("CCH_SECRET_KEY", support::bin::SECRET_KEY)
        .env("RUST_LOG", "warn")
        .args(["import", "cch-ts", "--from", from]);
    if dry_run {
        c.arg("--dry-run");
    }
    let out = c.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn admin_list(cch: &CchProcess, path: &str) -> Vec<Value> {
    let v: Value = cch
        .http
        .get(cch.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match v {
        Value::Array(a) => a,
        Value::Object(ref o) => o
            .get("data")
            .or_else(|| o.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn the_fixture_imports_once_reports_what_it_cannot_map_and_its_keys_work() {
    let Some(db) = TestDatabase::create("import_cch_ts").await else {
        return;
    };
    let up = FakeUpstream::start().await;
    up.set_default(Reply::message("hello from upstream"));
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let schema = include_str!("fixtures/cch_ts_schema.sql");
    let rows = include_str!("fixtures/cch_ts_rows.sql").replace("{UPSTREAM}", &up.url());
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(rows))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let cch = spawn(BIN, &[("CONFIG_REFRESH_INTERVAL_MS", "200")]).await;

    let (ok, dry, err) = import(&cch, &db.url, true).await;
    eprintln!("--- dry run ---\n{dry}{err}");
    assert!(ok, "{dry}\n{err}");
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert!(
        dry.contains("source: 3 users, 5 keys, 4 providers, 4 price rows, 3 error rules, 2 sensitive words, 1 webhook targets"),
        "{dry}"
    );
    for line in [
        "providers: 3 created, 0 updated, 0 unchanged",
        "users: 2 created, 0 updated, 0 unchanged",
        "keys: 2 created, 0 updated, 0 unchanged",
        "prices: 2 created, 0 updated, 0 unchanged",
        "error_rules: 2 created, 0 updated, 0 unchanged",
        "create provider 'anthropic-main'",
        "create key 'alice laptop' (…cdef) of user 'alice'",
        "cannot be mapped",
        "user 'carol' (id 3): deleted there",
        "key id 3: the same key text as key id 1",
        "key 'bob ci' (id 2) of user 'bob': its own provider group 'vip' not mapped",
        "user 'bob' (id 2): tags not mapped",
        "user 'bob' (id 2): the 5 h limit resets in fixed blocks",
        "provider 'codex-relay' (id 2): imported disabled",
        "redirect rule regex '^o.*'",
        "provider 'retired' (id 4): deleted there",
        "price of model 'dall-e-3'",
        "error rule '(unclosed' (id 3): not imported",
        "sensitive_words: 2 created, 0 updated, 0 unchanged",
        "webhook targets: 1 not imported",
        "provider 'gemini-key' (id 3): weight 150 outside cch's 0..=100; 100 used",
    ] {
        assert!(dry.contains(line), "missing '{line}' in:\n{dry}");
    }
    assert!(
        admin_list(&cch, "/api/v1/users").await.is_empty(),
        "the dry run wrote nothing"
    );
    assert!(admin_list(&cch, "/api/v1/providers").await.is_empty());

    let (ok, first, err) = import(&cch, &db.url, false).await;
    eprintln!("--- import ---\n{first}{err}");
    assert!(ok, "{first}\n{err}");
    assert!(first.contains("users: 2 created"), "{first}");
    assert!(first.contains("keys: 2 created"), "{first}");

    let (ok, second, err) = import(&cch, &db.url, false).await;
    eprintln!("--- second import ---\n{second}{err}");
    assert!(ok, "{second}\n{err}");
    for kind in [
        "providers: 0 created, 0 updated, 3",
        "users: 0 created, 0 updated, 2",
        "keys: 0 created, 0 updated, 2",
        "prices: 0 created, 0 updated, 2",
        "error_rules: 0 created, 0 updated, 2",
        "sensitive_words: 0 created, 0 updated, 2",
    ] {
        assert!(second.contains(kind), "missing '{kind}' in:\n{second}");
    }
    assert!(!second.contains("changes that were made"), "{second}");

    // The imported entities as the admin API shows them.
    let providers = admin_list(&cch, "/api/v1/providers").await;
    let main = providers
        .iter()
        .find(|p| p["name"] == "anthropic-main")
        .expect("provider imported");
    assert_eq!(main["weight"], 10);
    let relay = providers
        .iter()
        .find(|p| p["name"] == "codex-relay")
        .expect("relay imported");
    assert!(
        relay["custom_headers"]["x-team"].is_string(),
        "custom headers come over: {relay}"
    );
    assert_eq!(main["group_tag"], "default");
    assert_eq!(main["failure_threshold"], 4);
    assert_eq!(main["open_duration_ms"], 600_000);
    assert_eq!(main["idle_timeout_ms"], 45_000);
    assert_eq!(main["max_retry_attempts"], 3);
    assert_eq!(
        main["api_key"].as_str().map(|k| k.contains("secret")),
        Some(false),
        "masked in views"
    );

    // The original's client key works unchanged (after the config refresh).
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let r = cch
            .http
            .post(cch.url("/v1/messages"))
            .header("x-api-key", ALICE_KEY)
            .json(&json!({"model": "claude-3-5-sonnet", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        if r.status() != 401 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from upstream"), "{body}");
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].json.as_ref().unwrap()["model"],
        "claude-sonnet-4-5",
        "the original's model redirect applies"
    );
    // Bob's key came over disabled, as it was. A refresh that ran during the import may have
    // loaded Alice's key but not yet Bob's (the next refresh does), so wait for it too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let r = cch
            .http
            .post(cch.url("/v1/messages"))
            .header("x-api-key", "sk-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        if r.status() != 401 || Instant::now() > deadline {
            break r.status();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 403);
    drop(cch);
    db.drop_db().await;
}
