//! Configuration from the environment, with the original Claude Code Hub's variable names and
//! defaults so an existing `.env` works unchanged. Parsing is a pure function of a map so every
//! rule is testable; `from_process_env` reads the real environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

/// A configuration value that cannot be used; startup stops with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}={value:?}: {expected}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// The value found (never printed for secrets: see `ADMIN_TOKEN`).
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

/// Where configuration, keys and logs are stored.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (the embedded default).
    Sqlite(String),
    /// A PostgreSQL server.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(url) => write!(f, "Sqlite({url})"),
            Self::Postgres(url) => write!(f, "Postgres({})", redact_url(url)),
        }
    }
}

/// Log output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting cch reads at startup.
#[derive(Clone)]
pub struct Settings {
    /// Listening port (`APP_PORT`, 23000).
    pub app_port: u16,
    /// Listening address (`APP_HOST`, 0.0.0.0).
    pub app_host: String,
    /// Admin token (`ADMIN_TOKEN`); `None` means generate or load one from the data folder.
    pub admin_token: Option<String>,
    /// Key sealing secrets at rest (`CCH_SECRET_KEY`, 32 bytes base64); `None` means generate
    /// or load one from the data folder.
    pub secret_key: Option<String>,
    /// Older keys that still open values during a rotation (`CCH_SECRET_KEY_OLD`, comma list).
    pub secret_key_old: Vec<String>,
    /// Database (`DSN`; unset → SQLite under the data folder).
    pub database: Database,
    /// Redis (`REDIS_URL`); `None` → in-process counters.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (`REDIS_KEY_PREFIX`, `cch:`), so instances can share a Redis
    /// with other applications.
    pub redis_key_prefix: String,
    /// Folder for the SQLite file, the generated admin token and the log spool (`DATA_DIR`, ./data).
    pub data_dir: PathBuf,
    /// Apply migrations at startup (`AUTO_MIGRATE`, true).
    pub auto_migrate: bool,
    /// Enforce RPM, spend and concurrency limits (`ENABLE_RATE_LIMIT`, true).
    pub enable_rate_limit: bool,
    /// Session stickiness and concurrency TTL (`SESSION_TTL`, 300 s).
    pub session_ttl: Duration,
    /// Keep request messages with sessions (`STORE_SESSION_MESSAGES`, false).
    pub store_session_messages: bool,
    /// Mark admin cookies Secure (`ENABLE_SECURE_COOKIES`, true).
    pub enable_secure_cookies: bool,
    /// The address users reach cch at (`APP_URL`), shown on the client setup page; empty = taken
    /// from each request.
    pub app_url: Option<String>,
    /// Count network errors as breaker failures (`ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS`, false).
    pub breaker_on_network_errors: bool,
    /// Probe open breakers (`ENABLE_SMART_PROBING`, false).
    pub enable_smart_probing: bool,
    /// Probe interval (`PROBE_INTERVAL_MS`, 30 000).
    pub probe_interval: Duration,
    /// Probe timeout (`PROBE_TIMEOUT_MS`, 5 000).
    pub probe_timeout: Duration,
    /// Provider test-connection timeout (`API_TEST_TIMEOUT_MS`, 15 000, 5 000–120 000).
    pub api_test_timeout: Duration,
    /// Timezone of daily/weekly/monthly resets and of display (`TZ`, Asia/Shanghai).
    pub timezone: Tz,
    /// Log output style (`LOG_FORMAT`, text).
    pub log_format: LogFormat,
    /// Largest accepted client request body (`MAX_BODY_BYTES`, 64 MiB).
    pub max_body_bytes: usize,
    /// Largest body a compressed request may decode to (`MAX_DECOMPRESSED_REQUEST_BYTES`,
    /// 100 MiB); beyond it, 413.
    pub max_decompressed_request_bytes: usize,
    /// Tries per provider when it sets none (`MAX_RETRY_ATTEMPTS_DEFAULT`, 2).
    pub max_retry_attempts_default: u32,
    /// Upper bound of upstream attempts per client request (`MAX_ATTEMPTS_PER_REQUEST`, 6).
    pub max_attempts_per_request: u32,
    /// How often the config snapshot is reloaded from the database so instances converge
    /// (`CONFIG_REFRESH_INTERVAL_MS`, 5 000).
    pub config_refresh_interval: Duration,
    /// Client connection limits and timeouts (see [`ClientLimits`]).
    pub client: ClientLimits,
    /// Notification delivery and alerts (see [`super::notify::config::NotifySettings`]).
    pub notify: super::notify::config::NotifySettings,
}

/// Bounds on what one client connection may hold, so no client can make cch unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// A new connection must send its first request head within this time, and a request
    /// head, once begun, must be complete within it (`CLIENT_HEADER_TIMEOUT_MS`, 10 000).
    pub header_timeout: Duration,
    /// Longest gap between two pieces of a request body (`CLIENT_BODY_IDLE_TIMEOUT_MS`, 30 000).
    pub body_idle_timeout: Duration,
    /// Longest time a write to the client may stay blocked (the client stopped reading its
    /// answer); the connection is then closed (`CLIENT_WRITE_TIMEOUT_MS`, 60 000).
    pub write_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request
    /// (`CLIENT_KEEPALIVE_TIMEOUT_MS`, 60 000).
    pub keepalive_timeout: Duration,
    /// Most client connections open at once (`MAX_CLIENT_CONNECTIONS`, 10 000; lowered at
    /// startup to fit the open-file limit). Beyond it new connections are closed at once.
    pub max_connections: usize,
    /// Most bytes of request bodies buffered at once across all connections
    /// (`MAX_BUFFERED_BODY_BYTES`, 4 × `MAX_BODY_BYTES`); beyond it, 503 with `retry-after`.
    pub max_buffered_body_bytes: u64,
    /// How long shutdown waits for open requests before cutting the remaining streams with an
    /// error event (`SHUTDOWN_DRAIN_MS`, or its older name `SHUTDOWN_DRAIN_TIMEOUT_MS`, 30 000).
    pub shutdown_drain_timeout: Duration,
    /// How long, after the first signal, `/ready` answers 503 while new connections are still
    /// accepted, so a load balancer stops sending before the listener closes
    /// (`SHUTDOWN_READY_DELAY_MS`, 0).
    pub shutdown_ready_delay: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("app_port", &self.app_port)
            .field("database", &self.database)
            .field("redis", &self.redis_url.as_deref().map(redact_url))
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

/// Hides the password of a URL (`scheme://user:****@host/...`) for logs and errors.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut u) = url::Url::parse(raw) else {
        return "<unparseable url>".to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("****"));
    }
    // A Unix-socket Redis URL carries its password in the query (`?pass=`).
    let secret = |k: &str| matches!(k, "pass" | "password");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "****".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// The token shipped in the original's example `.env`; never accepted.
pub const PLACEHOLDER_ADMIN_TOKEN: &str = "change-me";

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    /// The trimmed value with one pair of surrounding quotes removed; empty counts as unset.
    fn get(&self, var: &str) -> Option<String> {
        let raw = self.0.get(var)?.trim();
        let unquoted = strip_quotes(raw).trim();
        (!unquoted.is_empty()).then(|| unquoted.to_string())
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    var,
                    value: v,
                    expected: "true or false".into(),
                }),
            },
        }
    }

    fn int(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    var,
                    value: v,
                    expected: format!("an integer between {min} and {max}"),
                }),
            },
        }
    }
}

fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

impl Settings {
    /// Reads the process environment (after `.env` has been loaded by the caller).
    pub fn from_process_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    /// Parses settings from a variable map; the single place where defaults live.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let app_port = env.int("APP_PORT", 23000, 0, 65535)? as u16;
        let app_host = env.get("APP_HOST").unwrap_or_else(|| "0.0.0.0".to_string());
        let admin_token = env.get("ADMIN_TOKEN");
        if let Some(t) = &admin_token {
            if t == PLACEHOLDER_ADMIN_TOKEN {
                return Err(ConfigError {
                    var: "ADMIN_TOKEN",
                    value: "<redacted>".into(),
                    expected: "a secret of your own: 'change-me' is the public example value and \
                               would let anyone administer this gateway (or leave ADMIN_TOKEN \
                               unset to have one generated)"
                        .into(),
                });
            }
            if t.len() < 8 {
                return Err(ConfigError {
                    var: "ADMIN_TOKEN",
                    value: "<redacted>".into(),
                    expected: "at least 8 characters".into(),
                });
            }
        }
        let data_dir = PathBuf::from(env.get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database = match env.get("DSN") {
            None => Database::Sqlite(format!("sqlite://{}", data_dir.join("cch.db").display())),
            Some(dsn) if dsn.starts_with("sqlite:") => Database::Sqlite(dsn),
            Some(dsn) if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") => {
                Database::Postgres(dsn)
            }
            Some(dsn) => {
                return Err(ConfigError {
                    var: "DSN",
                    value: redact_url(&dsn),
                    expected: "unset (SQLite in the data folder), sqlite://PATH, or postgres://…"
                        .into(),
                });
            }
        };
        let redis_url = match env.get("REDIS_URL") {
            None => None,
            Some(u)
                if [
                    "redis://",
                    "rediss://",
                    "redis+sentinel://",
                    "redis+cluster://",
                    "unix://",
                    "redis+unix://",
                ]
                .iter()
                .any(|s| u.starts_with(s)) =>
            {
                Some(u)
            }
            Some(u) => {
                return Err(ConfigError {
                    var: "REDIS_URL",
                    value: redact_url(&u),
                    expected: "unset (in-process counters), redis://…, rediss://…, \
                               redis+sentinel://…, redis+cluster://… or unix://…"
                        .into(),
                });
            }
        };
        let timezone = match env.get("TZ") {
            None => chrono_tz::Asia::Shanghai,
            Some(tz) => tz
                .trim_start_matches(':')
                .parse::<Tz>()
                .map_err(|_| ConfigError {
                    var: "TZ",
                    value: tz.clone(),
                    expected: "an IANA timezone name such as Asia/Shanghai, UTC or Europe/Berlin"
                        .into(),
                })?,
        };
        let log_format = match env.get("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    value: v,
                    expected: "text or json".into(),
                });
            }
        };
        let ms = Duration::from_millis;
        let max_body_bytes = env.int("MAX_BODY_BYTES", 64 << 20, 1024, 1 << 30)?;
        let client = ClientLimits {
            header_timeout: ms(env.int("CLIENT_HEADER_TIMEOUT_MS", 10_000, 100, 600_000)?),
            body_idle_timeout: ms(env.int("CLIENT_BODY_IDLE_TIMEOUT_MS", 30_000, 100, 600_000)?),
            write_timeout: ms(env.int("CLIENT_WRITE_TIMEOUT_MS", 60_000, 100, 3_600_000)?),
            keepalive_timeout: ms(env.int(
                "CLIENT_KEEPALIVE_TIMEOUT_MS",
                60_000,
                100,
                3_600_000,
            )?),
            max_connections: env.int("MAX_CLIENT_CONNECTIONS", 10_000, 1, 10_000_000)? as usize,
            max_buffered_body_bytes: env.int(
                "MAX_BUFFERED_BODY_BYTES",
                4 * max_body_bytes,
                max_body_bytes,
                1 << 40,
            )?,
            shutdown_drain_timeout: ms(match env.get("SHUTDOWN_DRAIN_MS") {
                Some(_) => env.int("SHUTDOWN_DRAIN_MS", 30_000, 0, 3_600_000)?,
                None => env.int("SHUTDOWN_DRAIN_TIMEOUT_MS", 30_000, 0, 3_600_000)?,
            }),
            shutdown_ready_delay: ms(env.int("SHUTDOWN_READY_DELAY_MS", 0, 0, 600_000)?),
        };
        let notify = super::notify::config::NotifySettings::from_map(vars)?;
        Ok(Self {
            notify,
            app_port,
            app_host,
            admin_token,
            secret_key: env.get("CCH_SECRET_KEY").filter(|k| !k.trim().is_empty()),
            secret_key_old: env
                .get("CCH_SECRET_KEY_OLD")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            database,
            redis_url,
            redis_key_prefix: env
                .get("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "cch:".to_string()),
            data_dir,
            auto_migrate: env.bool("AUTO_MIGRATE", true)?,
            enable_rate_limit: env.bool("ENABLE_RATE_LIMIT", true)?,
            session_ttl: Duration::from_secs(env.int("SESSION_TTL", 300, 1, 7 * 86_400)?),
            store_session_messages: env.bool("STORE_SESSION_MESSAGES", false)?,
            enable_secure_cookies: env.bool("ENABLE_SECURE_COOKIES", true)?,
            app_url: env
                .get("APP_URL")
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            breaker_on_network_errors: env
                .bool("ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS", false)?,
            enable_smart_probing: env.bool("ENABLE_SMART_PROBING", false)?,
            probe_interval: ms(env.int("PROBE_INTERVAL_MS", 30_000, 1_000, 86_400_000)?),
            probe_timeout: ms(env.int("PROBE_TIMEOUT_MS", 5_000, 100, 600_000)?),
            api_test_timeout: ms(env.int("API_TEST_TIMEOUT_MS", 15_000, 5_000, 120_000)?),
            timezone,
            log_format,
            max_body_bytes: max_body_bytes as usize,
            max_decompressed_request_bytes: env.int(
                "MAX_DECOMPRESSED_REQUEST_BYTES",
                100 << 20,
                1024,
                1 << 34,
            )? as usize,
            max_retry_attempts_default: env.int("MAX_RETRY_ATTEMPTS_DEFAULT", 2, 1, 10)? as u32,
            max_attempts_per_request: env.int("MAX_ATTEMPTS_PER_REQUEST", 6, 1, 50)? as u32,
            config_refresh_interval: ms(env.int(
                "CONFIG_REFRESH_INTERVAL_MS",
                5_000,
                100,
                3_600_000,
            )?),
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_map(&map)
    }

    #[test]
    fn defaults_match_the_original() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.app_port, 23000);
        assert_eq!(
            s.database,
            Database::Sqlite("sqlite://./data/cch.db".into())
        );
        assert!(s.redis_url.is_none() && s.admin_token.is_none());
        assert!(s.auto_migrate && s.enable_rate_limit && s.enable_secure_cookies);
        assert!(
            !s.store_session_messages && !s.breaker_on_network_errors && !s.enable_smart_probing
        );
        assert_eq!(s.session_ttl, Duration::from_secs(300));
        assert_eq!(s.probe_interval, Duration::from_millis(30_000));
        assert_eq!(s.probe_timeout, Duration::from_millis(5_000));
        assert_eq!(s.api_test_timeout, Duration::from_millis(15_000));
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.max_retry_attempts_default, 2);
        assert_eq!(s.client.header_timeout, Duration::from_secs(10));
        assert_eq!(s.client.body_idle_timeout, Duration::from_secs(30));
        assert_eq!(s.client.keepalive_timeout, Duration::from_secs(60));
        assert_eq!(s.client.max_connections, 10_000);
        assert_eq!(s.client.max_buffered_body_bytes, 256 << 20);
        assert_eq!(s.client.shutdown_drain_timeout, Duration::from_secs(30));
        assert_eq!(s.client.shutdown_ready_delay, Duration::ZERO);
    }

    #[test]
    fn shutdown_drain_takes_the_issue_name_before_the_older_one() {
        let s = parse(&[("SHUTDOWN_DRAIN_TIMEOUT_MS", "5000")]).unwrap();
        assert_eq!(s.client.shutdown_drain_timeout, Duration::from_secs(5));
        let s = parse(&[
            ("SHUTDOWN_DRAIN_MS", "7000"),
            ("SHUTDOWN_DRAIN_TIMEOUT_MS", "5000"),
        ])
        .unwrap();
        assert_eq!(s.client.shutdown_drain_timeout, Duration::from_secs(7));
        assert_eq!(
            parse(&[("SHUTDOWN_DRAIN_MS", "x")]).err().unwrap().var,
            "SHUTDOWN_DRAIN_MS"
        );
    }

    #[test]
    fn body_budget_must_hold_one_largest_body() {
        let err = parse(&[
            ("MAX_BODY_BYTES", "1048576"),
            ("MAX_BUFFERED_BODY_BYTES", "1048575"),
        ])
        .err()
        .unwrap();
        assert_eq!(err.var, "MAX_BUFFERED_BODY_BYTES");
        let s = parse(&[("MAX_BODY_BYTES", "1048576")]).unwrap();
        assert_eq!(s.client.max_buffered_body_bytes, 4 << 20);
    }

    #[test]
    fn booleans_accept_quotes() {
        for v in ["true", "\"true\"", "'true'", "TRUE"] {
            assert!(
                parse(&[("ENABLE_SMART_PROBING", v)])
                    .unwrap()
                    .enable_smart_probing
            );
        }
        for v in ["false", "\"false\"", "'false'"] {
            assert!(!parse(&[("AUTO_MIGRATE", v)]).unwrap().auto_migrate);
        }
        let err = parse(&[("AUTO_MIGRATE", "maybe")]).err().unwrap();
        assert_eq!(err.var, "AUTO_MIGRATE");
        assert!(err.to_string().contains("true or false"));
    }

    #[test]
    fn rejects_placeholder_token_and_bad_values() {
        assert_eq!(
            parse(&[("ADMIN_TOKEN", "change-me")]).err().unwrap().var,
            "ADMIN_TOKEN"
        );
        assert_eq!(
            parse(&[("API_TEST_TIMEOUT_MS", "4999")]).err().unwrap().var,
            "API_TEST_TIMEOUT_MS"
        );
        assert!(parse(&[("API_TEST_TIMEOUT_MS", "120000")]).is_ok());
        assert_eq!(
            parse(&[("APP_PORT", "99999")]).err().unwrap().var,
            "APP_PORT"
        );
        assert_eq!(parse(&[("DSN", "mysql://x")]).err().unwrap().var, "DSN");
        assert_eq!(
            parse(&[("REDIS_URL", "http://x")]).err().unwrap().var,
            "REDIS_URL"
        );
        assert_eq!(parse(&[("TZ", "Mars/Olympus")]).err().unwrap().var, "TZ");
        assert_eq!(
            parse(&[("LOG_FORMAT", "xml")]).err().unwrap().var,
            "LOG_FORMAT"
        );
    }

    #[test]
    fn dsn_selects_backend() {
        let pg = parse(&[("DSN", "postgres://u:secret@db/cch")])
            .unwrap()
            .database;
        assert!(matches!(pg, Database::Postgres(_)));
        assert!(!format!("{pg:?}").contains("secret"));
        let sq = parse(&[("DSN", "sqlite:///tmp/x.db")]).unwrap().database;
        assert_eq!(sq, Database::Sqlite("sqlite:///tmp/x.db".into()));
        let s = parse(&[("REDIS_URL", "\"redis://localhost:6379\""), ("TZ", "UTC")]).unwrap();
        assert_eq!(s.redis_url.as_deref(), Some("redis://localhost:6379"));
        for socket in [
            "unix:///run/redis/redis.sock?db=2",
            "redis+unix:///tmp/r.sock",
        ] {
            let s = parse(&[("REDIS_URL", socket)]).unwrap();
            assert_eq!(s.redis_url.as_deref(), Some(socket));
        }
        let shown = redact_url("unix:///run/redis.sock?db=2&pass=s3cret");
        assert!(
            !shown.contains("s3cret") && shown.contains("db=2"),
            "{shown}"
        );
        let s = parse(&[("REDIS_URL", "redis+unix:///r.sock?pass=s3cret")]).unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
