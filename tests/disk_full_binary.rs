//! The real `cch` binary on the embedded default, its data folder on a small disk that fills up
//! for a few seconds under load (issue 16, items 0 and 4): every accepted request's log row is
//! there after a restart, admin writes work once the disk is freed, an outside writer can take
//! the database lock, `/ready` reports the database degraded while writes fail, and the data
//! files are private.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use support::fake_upstream::FakeUpstream;
use support::small_disk::SmallDisk;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_cch");
const TOKEN: &str = "disk-full-admin-token-0123456789abcdef";

async fn spawn(data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", "0")
        .env("DATA_DIR", data)
        .env("ADMIN_TOKEN", TOKEN)
        .env("ENABLE_SECURE_COOKIES", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn cch");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("cch listening on ") {
                return Some(url.to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("cch prints its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn stop(mut child: Child) {
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .expect("cch exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "clean exit: {status:?}");
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin call");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn message(&self, key: &str) -> u16 {
        self.http
            .post(format!("{}/v1/messages", self.base))
            .header("x-api-key", key)
            .json(&json!({"model": "claude-sonnet-4", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    async fn ready(&self) -> Value {
        match self.http.get(format!("{}/ready", self.base)).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    async fn new_key(&self, user: i64, name: &str) -> Option<String> {
        let (s, k) = self
            .admin(&format!("/api/v1/users/{user}/keys"), json!({"name": name}))
            .await;
        (s == 201)
            .then(|| k["key"].as_str().map(str::to_string))
            .flatten()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
}

async fn count_rows(db: &Path) -> i64 {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("outside connection");
    sqlx::query_scalar("SELECT COUNT(*) FROM request_logs")
        .fetch_one(&mut c)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_disk_full_for_seconds_loses_no_row_and_leaves_the_database_usable() {
    support::init_crypto();
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let data = disk.path().join("data");
    let up = FakeUpstream::start().await;
    let (child, base) = spawn(&data).await;
    let c = Client {
        http: reqwest::Client::new(),
        base,
    };
    let (s, _) = c
        .admin(
            "/api/v1/providers",
            json!({"name": "a", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-disk-full-1"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, user) = c.admin("/api/v1/users", json!({"name": "u"})).await;
    let user = user["id"].as_i64().expect("user id");
    let key = c.new_key(user, "k").await.expect("key");

    let mut accepted = 0i64;
    for _ in 0..30 {
        assert_eq!(c.message(&key).await, 200);
        accepted += 1;
    }
    // The disk fills for about three seconds while requests keep coming.
    let filler = disk.fill();
    let mut saw_degraded = false;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let s = c.message(&key).await;
        assert_eq!(s, 200, "a full disk never fails a client request");
        accepted += 1;
        saw_degraded |= c.ready().await["database"] == "degraded";
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..100 {
        if saw_degraded {
            break;
        }
        saw_degraded |= c.ready().await["database"] == "degraded";
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_degraded,
        "/ready reports the database degraded while writes fail"
    );
    std::fs::remove_file(filler).expect("free the disk");

    // After the fault: more requests, and an admin write that is stored and usable.
    for _ in 0..20 {
        assert_eq!(c.message(&key).await, 200);
        accepted += 1;
    }
    let later_key = c
        .new_key(user, "after-the-fault")
        .await
        .expect("key after the fault");
    assert_eq!(c.message(&later_key).await, 200);
    accepted += 1;

    // An outside writer can take the lock while cch runs.
    let db = data.join("cch.db");
    let mut outside = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("outside");
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut outside)
        .await
        .expect("pragma");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut outside)
        .await
        .expect("an outside writer takes the database lock");
    sqlx::query("ROLLBACK")
        .execute(&mut outside)
        .await
        .expect("rollback");
    drop(outside);

    // /ready comes back once the held and spooled rows are in the database.
    let mut ready_ok = false;
    for _ in 0..100 {
        if c.ready().await["database"] == "ok" {
            ready_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready_ok, "/ready returns to ok after the fault");

    // Private files (item 4).
    assert_eq!(mode(&data), 0o700, "data folder");
    for f in ["cch.db", "cch.db-wal", "cch.db-shm"] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode(&data.join("cch.db")), 0o600);
    assert_eq!(mode(&data.join("spool")), 0o700, "spool folder");

    // Every accepted request's row survives a restart, and so does the key.
    stop(child).await;
    let received = up.requests();
    assert_eq!(
        received.len() as i64,
        accepted,
        "one upstream call per request"
    );
    for r in &received {
        assert_eq!(r.path_only(), "/v1/messages");
        assert_eq!(
            r.header("x-api-key"),
            Some("sk-disk-full-1"),
            "provider key sent"
        );
        assert_eq!(
            r.json.as_ref().map(|j| j["model"].clone()),
            Some(json!("claude-sonnet-4"))
        );
    }
    assert_eq!(
        count_rows(&db).await,
        accepted,
        "one row per accepted request"
    );
    let (child, base) = spawn(&data).await;
    let c = Client {
        http: reqwest::Client::new(),
        base,
    };
    assert_eq!(
        c.message(&later_key).await,
        200,
        "the key created after the fault survives"
    );
    stop(child).await;
    assert_eq!(up.request_count() as i64, accepted + 1);
    assert_eq!(count_rows(&db).await, accepted + 1);
}
