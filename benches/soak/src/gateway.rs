//! The cch process under test: started from the release binary with a fresh data folder (and
//! optionally a fresh PostgreSQL database and a private Redis key prefix), configured through
//! the admin API, stopped and cleaned up at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::args::Opts;

/// A running cch and what it was set up with.
pub struct Gateway {
    child: Child,
    /// Process id (for `/proc` sampling).
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// One key per user, in user order.
    pub keys: Vec<String>,
    /// The users' ids, in user order.
    pub user_ids: Vec<i64>,
    /// The providers' ids.
    pub provider_ids: Vec<i64>,
    /// The admin token.
    pub token: String,
    /// The `DSN` this instance runs on (Postgres), if any.
    pub dsn: Option<String>,
    /// The database created for this run (dropped at the end unless `--keep-data`).
    pg_database: Option<(String, String)>,
    /// `REDIS_URL` and the key prefix of this run.
    pub redis: Option<(String, String)>,
    data_dir: PathBuf,
    keep: bool,
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn run_psql(server: &str, sql: &str) -> Result<(), String> {
    let out = std::process::Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql (needed for --postgres): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Gateway {
    /// Starts cch and waits until it answers `/health`.
    pub async fn start(o: &Opts, upstream_url: &str) -> Result<Self, String> {
        Self::start_instance(o, &[upstream_url], "data", None).await
    }

    /// Starts a cch whose two providers point at `upstreams` (the first and the second, or the
    /// same one twice), in `o.out/<dir>`; with `share`, on the same database, Redis prefix,
    /// admin token and configuration as that instance (nothing is created).
    pub async fn start_instance(
        o: &Opts,
        upstreams: &[&str],
        dir: &str,
        share: Option<&Gateway>,
    ) -> Result<Self, String> {
        // Absolute, because cch runs in its data folder.
        let cch = std::fs::canonicalize(&o.cch).map_err(|e| {
            format!(
                "{}: {e}: build it first with `cargo build --release` at the repo root, or pass --cch",
                o.cch.display()
            )
        })?;
        let data_dir = o.out.join(dir);
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        // Absolute, because cch runs in it (a relative DATA_DIR would nest inside itself).
        let data_dir = std::fs::canonicalize(&data_dir).map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let token = share.map_or_else(
            || format!("soak-admin-{}", std::process::id()),
            |g| g.token.clone(),
        );
        let tag = format!(
            "soak_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        );
        let log_name = if dir == "data" {
            "cch.log".to_string()
        } else {
            format!("cch-{dir}.log")
        };
        let log = std::fs::File::create(o.out.join(log_name)).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&cch);
        cmd.current_dir(&data_dir)
            .env_remove("DSN")
            .env_remove("REDIS_URL")
            .env("DATA_DIR", &data_dir)
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", port.to_string())
            .env("ADMIN_TOKEN", &token)
            .env("TZ", "UTC")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true);
        let mut pg_database = None;
        let mut dsn = None;
        let mut redis = None;
        if let Some(g) = share {
            dsn = g.dsn.clone();
            redis = g.redis.clone();
        } else {
            if let Some(server) = &o.postgres {
                run_psql(server, &format!("CREATE DATABASE {tag}"))?;
                dsn = Some(format!("{server}/{tag}"));
                pg_database = Some((server.clone(), tag.clone()));
            }
            if let Some(url) = &o.redis {
                redis = Some((url.clone(), format!("{tag}:")));
            }
        }
        if let Some(g) = share {
            // Instances sharing a database share its secret key (see "Secrets in the database").
            let key = data_dir.join("secret_key");
            std::fs::copy(g.data_dir.join("secret_key"), &key)
                .map_err(|e| format!("cannot share the secret key: {e}"))?;
        }
        if let Some(d) = &dsn {
            cmd.env("DSN", d);
        }
        if let Some((url, prefix)) = &redis {
            cmd.env("REDIS_URL", url).env("REDIS_KEY_PREFIX", prefix);
        }
        for (k, v) in &o.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cch.display()))?;
        let pid = child.id().ok_or("cch exited at once")?;
        let mut gw = Gateway {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}"),
            keys: share.map(|g| g.keys.clone()).unwrap_or_default(),
            user_ids: share.map(|g| g.user_ids.clone()).unwrap_or_default(),
            provider_ids: share.map(|g| g.provider_ids.clone()).unwrap_or_default(),
            token,
            dsn,
            pg_database,
            redis,
            data_dir,
            keep: o.keep_data,
        };
        gw.wait_healthy().await?;
        if share.is_none() {
            let token = gw.token.clone();
            gw.configure(o, upstreams, &token).await?;
        }
        Ok(gw)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("cch exited during startup ({status}); see cch.log"));
            }
            let ok = client
                .get(format!("{}/health", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("cch did not answer /health within 60 s; see cch.log".into())
    }

    /// Two providers on the fake upstream and `users` users with one key each, every kind of
    /// limit set high enough that requests pass; the last user's RPM rejects part of its
    /// traffic when `rejecting_user` is on.
    async fn configure(&mut self, o: &Opts, upstreams: &[&str], token: &str) -> Result<(), String> {
        let client = reqwest::Client::new();
        let post = |path: String, body: Value| {
            let req = client
                .post(format!("{}/api/v1{path}", self.url))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_string());
            async move {
                let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(format!("{path}: {status}: {text}"));
                }
                serde_json::from_str::<Value>(&text).map_err(|e| format!("{path}: {e}"))
            }
        };
        let timeout_ms = o.provider_timeout.as_millis() as u64;
        for (i, name) in ["soak-a", "soak-b"].into_iter().enumerate() {
            let upstream = upstreams
                .get(i)
                .or(upstreams.first())
                .copied()
                .unwrap_or("");
            let created = post(
                "/providers".into(),
                json!({
                    "name": name, "provider_type": "claude", "base_url": upstream,
                    "api_key": "sk-soak", "weight": 50,
                    "first_byte_timeout_ms": timeout_ms, "idle_timeout_ms": timeout_ms,
                    "request_timeout_ms": timeout_ms,
                    "failure_threshold": 100, "open_duration_ms": 60_000,
                    "limit_5h_usd": "1000000", "limit_daily_usd": "1000000",
                    "limit_weekly_usd": "1000000", "limit_monthly_usd": "1000000",
                    "limit_total_usd": "1000000", "limit_concurrent_sessions": 1000,
                }),
            )
            .await?;
            self.provider_ids
                .push(created["id"].as_i64().ok_or("provider without id")?);
        }
        let per_user_rpm = o.rate * 60.0 / o.users as f64;
        for u in 0..o.users {
            let rejecting = o.rejecting_user && u + 1 == o.users && o.users > 1;
            // Generous everywhere; the rejecting user's RPM is 80 % of what it sends.
            let rpm = if rejecting {
                ((per_user_rpm * 0.8) as i64).clamp(1, 1_000_000)
            } else {
                1_000_000
            };
            let mode = if u % 2 == 0 { "fixed" } else { "rolling" };
            let limits = json!({
                "rpm_limit": rpm, "limit_5h_usd": "1000000", "limit_daily_usd": "1000000",
                "daily_reset_mode": mode, "daily_reset_time": "00:00",
                "limit_weekly_usd": "1000000", "limit_monthly_usd": "1000000",
                "limit_total_usd": "1000000", "limit_concurrent_sessions": 1000,
            });
            let mut user = json!({"name": format!("soak-user-{u}")});
            merge(&mut user, &limits);
            let created = post("/users".into(), user).await?;
            let id = created["id"].as_i64().ok_or("user without id")?;
            self.user_ids.push(id);
            let mut key = json!({"name": "soak"});
            merge(&mut key, &limits);
            if let Some(k) = key.as_object_mut() {
                k.insert("rpm_limit".into(), json!(1_000_000));
            }
            let created = post(format!("/users/{id}/keys"), key).await?;
            let plain = created["key"].as_str().ok_or("key without plaintext")?;
            self.keys.push(plain.to_string());
        }
        Ok(())
    }

    /// Sends `signal` to cch (SIGKILL for a crash, SIGTERM for a graceful stop).
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as i32, signal);
        }
    }

    /// Waits up to `max` for cch to exit; its exit code, if it did.
    pub async fn wait_exit(&mut self, max: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(max, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Stops cch (SIGTERM, then kill after 15 s) and removes what the run created.
    pub async fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if let Some((url, prefix)) = &self.redis {
            match crate::redis_info::delete_prefix(url, prefix).await {
                Ok(n) => println!("deleted {n} Redis keys with prefix {prefix}"),
                Err(e) => eprintln!("cannot clean Redis keys {prefix}*: {e}"),
            }
        }
        if self.keep {
            println!("kept {}", self.data_dir.display());
            return;
        }
        if let Some((server, db)) = &self.pg_database
            && let Err(e) = run_psql(server, &format!("DROP DATABASE IF EXISTS {db}"))
        {
            eprintln!("{e}");
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

/// Resident set size of a process in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User plus system CPU time of a process (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    proc_cpu(Path::new(&format!("/proc/{pid}/stat")))
}

fn proc_cpu(path: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_secs_f64((utime + stime) as f64 / hz as f64))
}

/// CPU time of this process (load generator and fake upstream together).
pub fn own_cpu_time() -> Option<Duration> {
    proc_cpu(Path::new("/proc/self/stat"))
}

/// The 1-minute load average, for reporting next to any figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
