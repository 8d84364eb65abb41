//! PostgreSQL for integration tests: a fresh database per test, on the server named by
//! `CCH_TEST_DATABASE_URL`, or in a throwaway testcontainers server when Docker is reachable.

use sqlx::{Connection, Executor, PgConnection};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

/// A database created for one test; call [`TestDatabase::drop_db`] at the end to remove it.
/// A test that does not (or panics first) still leaves no database behind: dropping the value
/// removes it.
pub struct TestDatabase {
    /// URL of the fresh database.
    pub url: String,
    admin_url: String,
    name: String,
    /// Set once `drop_db` removed it, so `Drop` does not try again.
    dropped: bool,
    _container: Option<ContainerAsync<Postgres>>,
}

impl TestDatabase {
    /// Creates `cch_t_<random>` and returns it, or prints a SKIP line and returns `None` when
    /// no PostgreSQL is available.
    pub async fn create(test: &str) -> Option<Self> {
        let (admin_url, container) = match std::env::var("CCH_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ if super::docker_available() => match Postgres::default().start().await {
                Ok(c) => {
                    let host = c.get_host().await.ok()?;
                    let port = c.get_host_port_ipv4(5432).await.ok()?;
                    (
                        format!("postgres://postgres:postgres@{host}:{port}/postgres"),
                        Some(c),
                    )
                }
                Err(e) => {
                    super::skip(test, &format!("PostgreSQL container ({e})"));
                    return None;
                }
            },
            _ => {
                super::skip(test, "PostgreSQL");
                return None;
            }
        };
        let name = format!("cch_t_{}", super::unique_suffix());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}"));
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("CCH_TEST_DATABASE_URL is not a URL");
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            admin_url,
            name,
            dropped: false,
            _container: container,
        })
    }

    /// Drops the database (best effort; close every pool on it first).
    pub async fn drop_db(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // `Drop` runs inside the test's runtime, which may not block on a future: a thread of
        // its own with a small runtime removes the database (connections still open on it are
        // ended by `WITH (FORCE)`).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(drop_database(&admin_url, &name));
        })
        .join();
    }
}

/// `DROP DATABASE name` on the server of `admin_url`, forcing out open connections where the
/// server can (PostgreSQL 13+); best effort.
async fn drop_database(admin_url: &str, name: &str) {
    let Ok(mut conn) = PgConnection::connect(admin_url).await else {
        return;
    };
    let forced = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if conn.execute(sqlx::AssertSqlSafe(forced)).await.is_err() {
        let plain = format!("DROP DATABASE IF EXISTS {name}");
        let _ = conn.execute(sqlx::AssertSqlSafe(plain)).await;
    }
    let _ = conn.close().await;
}
