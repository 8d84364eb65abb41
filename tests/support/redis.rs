//! Where integration tests find Redis: `CCH_TEST_REDIS_URL` (shared server, isolated by a
//! unique key prefix per test), else a testcontainers Redis when Docker answers, else a skip.

use testcontainers_modules::redis::{REDIS_PORT, Redis};
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

/// A Redis a test may use, with the key prefix it must confine itself to.
pub struct TestRedis {
    /// Connection URL.
    pub url: String,
    /// Unique `cch_t_<suffix>:` prefix for this test's keys.
    pub prefix: String,
    _container: Option<ContainerAsync<Redis>>,
}

/// Finds a Redis for `test`, or prints a skip line and returns `None`.
pub async fn test_redis(test: &str) -> Option<TestRedis> {
    let prefix = format!("cch_t_{}:", super::unique_suffix());
    if let Some(url) = std::env::var("CCH_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some(TestRedis {
            url,
            prefix,
            _container: None,
        });
    }
    if super::docker_available() {
        match Redis::default().start().await {
            Ok(container) => {
                let port = container.get_host_port_ipv4(REDIS_PORT).await.ok()?;
                return Some(TestRedis {
                    url: format!("redis://127.0.0.1:{port}/"),
                    prefix,
                    _container: Some(container),
                });
            }
            Err(e) => eprintln!("testcontainers Redis failed: {e}"),
        }
    }
    super::skip(test, "Redis");
    None
}

impl TestRedis {
    /// `host:port` of the server (for a proxy in front of it).
    pub fn host_port(&self) -> String {
        let url = url::Url::parse(&self.url).expect("redis url");
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(6379)
        )
    }

    /// The same URL pointed at another address (a proxy), keeping credentials and database.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let mut url = url::Url::parse(&self.url).expect("redis url");
        url.set_ip_host(addr.ip()).expect("set host");
        url.set_port(Some(addr.port())).expect("set port");
        url.to_string()
    }

    /// A direct connection, to check what really reached Redis.
    pub async fn direct(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("direct redis connection")
    }

    /// Deletes every key under this test's prefix.
    pub async fn cleanup(&self) {
        let mut conn = self.direct().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
}
