//! The console in a real headless Chromium (`tests/python/console_browser.py`, Selenium with
//! Debian's `chromium` and `chromium-driver`, installed by `.ci/run`): login, every admin page, a
//! request proxied to a fake upstream seen in Logs with its chain, Chinese headings, and the key
//! holder's view. Screenshots go to `target/ui-screenshots/` and are checked not to be blank.

mod support;

use serde_json::json;
use support::app::{TEST_ADMIN_TOKEN, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

#[tokio::test]
async fn console_works_in_a_real_browser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = root.join(".venv/bin/python");
    let ready = py.exists() && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium, chromedriver and .venv"
        );
        eprintln!(
            "SKIP console_works_in_a_real_browser: run .ci/run to install chromium and selenium"
        );
        return;
    }
    let up = FakeUpstream::start().await;
    let t = spawn_app(&[("ENABLE_SECURE_COOKIES", "false"), ("TZ", "UTC")]).await;
    let (s, _) = t
        .post("/api/v1/providers", json!({"name": "fake", "provider_type": "claude", "base_url": up.url(), "api_key": "sk-123456789"}))
        .await;
    assert_eq!(s, 201);
    let (_, u) = t.post("/api/v1/users", json!({"name": "carol"})).await;
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "laptop"}),
        )
        .await;
    let key = k["key"].as_str().unwrap().to_string();
    up.push(Reply::message("hello"));
    let r = t
        .http
        .post(t.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The log row is written in a batch shortly after.
    for _ in 0..50 {
        let (_, logs) = t.get("/api/v1/logs").await;
        if logs["data"].as_array().is_some_and(|a| !a.is_empty())
            || logs.as_array().is_some_and(|a| !a.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = tokio::process::Command::new(py)
        .arg(root.join("tests/python/console_browser.py"))
        .env("CCH_BASE_URL", &t.base)
        .env("CCH_ADMIN_TOKEN", TEST_ADMIN_TOKEN)
        .env("CCH_KEY", &key)
        .env("CCH_SHOTS", root.join("target/ui-screenshots"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("console browser: ok"));
}
