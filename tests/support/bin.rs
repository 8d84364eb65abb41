//! The real `cch` binary as a child process: spawned with a clean environment on a random port,
//! its stdout drained, its stderr captured, and a few raw-socket helpers for tests that speak
//! HTTP byte by byte (slow clients, partial bodies).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The admin token the child runs with.
pub const ADMIN_TOKEN: &str = "bin-conn-admin-token-0123";
/// The secret key every spawned binary gets (so a second process on the same data reads it).
pub const SECRET_KEY: &str = super::app::TEST_SECRET_KEY;

/// A running `cch` child.
pub struct CchProcess {
    /// The child (killed on drop).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Everything written to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    /// The data folder (kept alive).
    pub dir: tempfile::TempDir,
    /// A plain HTTP client.
    pub http: reqwest::Client,
}

/// Spawns `cch serve` with SQLite in a fresh folder and `env` on top.
pub async fn spawn(bin: &str, env: &[(&str, &str)]) -> CchProcess {
    super::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin);
    c.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", "0")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CCH_SECRET_KEY", SECRET_KEY)
        .env("DATA_DIR", dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.arg("serve").spawn().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("cch listening on ") {
                return url.to_string();
            }
        }
        panic!("cch exited before listening")
    })
    .await
    .expect("cch listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = base.trim_start_matches("http://").to_string();
    CchProcess {
        child,
        base,
        addr,
        stderr,
        dir,
        http: reqwest::Client::new(),
    }
}

impl CchProcess {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs JSON to the admin API; returns the JSON answer (asserting a 2xx).
    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Adds a Claude provider at `upstream_url` (also serving OpenAI Chat clients, converted) and
    /// a user with one key; returns (key id, key).
    pub async fn provider_and_key(&self, upstream_url: &str) -> (i64, String) {
        self.admin_post(
            "/api/v1/providers",
            json!({"name": "up", "provider_type": "claude", "base_url": upstream_url, "api_key": "sk-up-secret", "extra_client_formats": ["openai"]}),
        )
        .await;
        let user = self.admin_post("/api/v1/users", json!({"name": "u"})).await;
        let key = self
            .admin_post(
                &format!("/api/v1/users/{}/keys", user["id"]),
                json!({"name": "k"}),
            )
            .await;
        (
            key["id"].as_i64().unwrap(),
            key["key"].as_str().unwrap().to_string(),
        )
    }

    /// One sample of `/metrics` (`name{labels}` exactly as rendered).
    pub async fn metric(&self, sample: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("child running") as i32;
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }
}

/// Reads until the peer closes (or fails); returns the bytes read, and whether it closed
/// within `limit`.
pub async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (out, closed)
}
