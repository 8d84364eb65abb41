//! The real `cch` binary: CLI flags, configuration errors, the generated admin token, and a key's
//! plaintext never reaching the database or the logs.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_cch");

fn base_command(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", "0")
        .env("DATA_DIR", dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Reads stdout until the "listening on" line; returns the base URL and the lines read so far.
async fn wait_listening(child: &mut Child) -> (String, Vec<String>) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line.clone());
            if let Some(url) = line.strip_prefix("cch listening on ") {
                return Some(url.to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no listening line; stdout: {seen:?}"));
    // Keep draining stdout so the child never blocks on a full pipe.
    let rest = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
        }
        out
    });
    std::mem::forget(rest);
    (found, seen)
}

#[tokio::test]
async fn help_and_version() {
    let out = Command::new(BIN).arg("--version").output().await.unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(BIN).arg("--help").output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve") && text.contains("migrate"), "{text}");
}

#[tokio::test]
async fn placeholder_admin_token_and_bad_values_stop_startup() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expect) in [
        ("ADMIN_TOKEN", "change-me", "ADMIN_TOKEN"),
        ("AUTO_MIGRATE", "perhaps", "AUTO_MIGRATE"),
        ("API_TEST_TIMEOUT_MS", "100", "API_TEST_TIMEOUT_MS"),
    ] {
        let out = base_command(dir.path())
            .env(var, value)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{var}={value} must stop startup");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{var}: {err}");
    }
}

#[tokio::test]
async fn migrate_subcommand_applies_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let out = base_command(dir.path())
        .env("ADMIN_TOKEN", "an-admin-token-123")
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/cch.db").exists());
}

#[tokio::test]
async fn generated_token_is_printed_once_saved_private_and_reused() {
    support::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut child = base_command(dir.path()).arg("serve").spawn().unwrap();
    let (base, seen) = wait_listening(&mut child).await;
    let token_path = dir.path().join("data/admin_token");
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 32);
    assert!(
        seen.iter().any(|l| l.contains(&token)),
        "printed on first start"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();

    let mut child = base_command(dir.path()).spawn().unwrap();
    let (base, seen) = wait_listening(&mut child).await;
    assert!(
        !seen.iter().any(|l| l.contains(&token)),
        "not printed again"
    );
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reused on the next start");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn key_plaintext_is_only_in_the_create_response() {
    support::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let token = "bin-test-admin-token-42";
    let mut child = base_command(dir.path())
        .env("ADMIN_TOKEN", token)
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf).await;
        buf
    });
    let (base, _) = wait_listening(&mut child).await;
    let http = reqwest::Client::new();
    let user: Value = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(token)
        .json(&json!({"name": "u"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created: Value = http
        .post(format!("{base}/api/v1/users/{}/keys", user["id"]))
        .bearer_auth(token)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let plaintext = created["key"].as_str().unwrap().to_string();
    // Use the key on the proxy too (no provider: 503), so the hot path's logging is exercised.
    let r = http
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", &plaintext)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let listed = http
        .get(format!("{base}/api/v1/users/{}/keys", user["id"]))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&plaintext));
    tokio::time::sleep(Duration::from_millis(500)).await; // let the log writer flush
    child.kill().await.unwrap();
    let logs = stderr_task.await.unwrap();
    assert!(!logs.is_empty(), "trace logs were produced");
    assert!(!logs.contains(&plaintext), "key never logged");
    assert!(!logs.contains(token), "admin token never logged");
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let hay = String::from_utf8_lossy(&bytes);
            assert!(
                !hay.contains(&plaintext),
                "plaintext key found in {}",
                path.display()
            );
        }
    }
}
