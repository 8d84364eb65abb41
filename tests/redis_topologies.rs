//! `REDIS_URL` naming a Redis Cluster, a Sentinel-watched master (issue 15 item 4) or a server
//! on a Unix socket: limits, sessions and breakers work the same as on one server over TCP.
//! Each test starts its own servers with Debian's `redis-server` (a three-node Cluster; a
//! master, a replica and a sentinel; one on a socket) on free loopback ports or in a temporary
//! directory, and stops them when it ends.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::app::{TestApp, spawn_app};
use support::fake_upstream::{FakeUpstream, Reply};

/// A `redis-server` process, killed when dropped.
struct RedisProc(Child);

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port whose Cluster bus port (+10,000) is free too.
fn free_port() -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 55_000 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
}

fn redis_server(dir: &std::path::Path, args: &[&str]) -> RedisProc {
    let child = Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (.ci/run installs it)");
    RedisProc(child)
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A provider, a user with an RPM limit of 3 and its key.
async fn setup(t: &TestApp, up: &FakeUpstream) -> String {
    let (s, p) = t
        .post(
            "/api/v1/providers",
            json!({"name": "p", "provider_type": "claude", "base_url": up.url(), "api_key": "sk"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, u) = t
        .post("/api/v1/users", json!({"name": "u", "rpm_limit": 3}))
        .await;
    assert_eq!(s, 201, "{u}");
    let (_, k) = t
        .post(
            &format!("/api/v1/users/{}/keys", u["id"]),
            json!({"name": "k"}),
        )
        .await;
    k["key"].as_str().unwrap().to_string()
}

async fn send(t: &TestApp, key: &str) -> u16 {
    t.http
        .post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
                      "metadata": {"session_id": "topology-session"},
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Three requests pass an RPM of 3 and the fourth is refused: the limit scripts ran on the
/// shared store (not the in-memory fallback, which `/ready` would report), and the session
/// shows in the listing.
async fn limits_hold(t: &TestApp, key: &str) {
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(t, key).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let (s, ready) = t.get("/ready").await;
    assert_eq!(s, 200, "{ready}");
    assert!(!ready.to_string().contains("degraded"), "{ready}");
    let mut listed = Value::Null;
    for _ in 0..50 {
        let (_, sessions) = t.get("/api/v1/sessions").await;
        listed = sessions;
        if listed.to_string().contains("topology-session") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the session is not listed: {listed}");
}

/// cch on `url` (keys under `prefix`) with a fake upstream answering `ok`, its provider, user
/// and key set up, and the limits checked to run on Redis. Keep the upstream alive.
async fn app_with_limits_on(url: &str, prefix: &str) -> (TestApp, FakeUpstream, String) {
    let up = FakeUpstream::start().await;
    up.set_default(Reply::text("ok"));
    let t = spawn_app(&[("REDIS_URL", url), ("REDIS_KEY_PREFIX", prefix)]).await;
    let key = setup(&t, &up).await;
    limits_hold(&t, &key).await;
    (t, up, key)
}

/// A single server that asks for a user and password, with a database number in the URL: cch
/// authenticates and selects that database, and again after the server restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_password_and_a_database_number() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = [
        "--port",
        &port.to_string(),
        // An ACL user (each rule its own argument) and no default user.
        "--user",
        "cch",
        "on",
        ">s3cret",
        "~*",
        "&*",
        "+@all",
        "--user",
        "default",
        "off",
    ];
    let server = redis_server(dir.path(), &args);
    let auth = ["--user", "cch", "--pass", "s3cret", "--no-auth-warning"];
    wait_until("the server", || {
        cli(port, &[&auth[..], &["ping"]].concat()).contains("PONG")
    });

    let url = format!("redis://cch:s3cret@127.0.0.1:{port}/3");
    let (t, _up, key) = app_with_limits_on(&url, "authdb:").await;
    let in_db = |db: &str| {
        cli(
            port,
            &[&auth[..], &["-n", db, "--scan", "--pattern", "authdb:*"]].concat(),
        )
        .lines()
        .count()
    };
    assert!(in_db("3") > 0, "the keys are in database 3");
    assert_eq!(in_db("0"), 0, "and not in database 0");

    // The server restarts empty: cch reconnects (authenticating again) and counts anew.
    drop(server);
    let _again = redis_server(dir.path(), &args);
    wait_until("the server again", || {
        cli(port, &[&auth[..], &["ping"]].concat()).contains("PONG")
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, ready) = t.get("/ready").await;
        if !ready.to_string().contains("degraded") && in_db("3") > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not back on Redis: {ready}");
        send(&t, &key).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server on a Unix socket only (no TCP port), as a Redis on the same host is often run:
/// `unix://` and `redis+unix://` URLs, with a database number, carry limits and sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let socket_arg = socket.to_string_lossy().to_string();
    let _server = redis_server(
        dir.path(),
        &[
            "--port",
            "0",
            "--unixsocket",
            &socket_arg,
            "--unixsocketperm",
            "700",
        ],
    );
    let sock_cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-s", &socket_arg])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    wait_until("the server", || sock_cli(&["ping"]).contains("PONG"));

    let url = format!("unix://{socket_arg}?db=4");
    let (_t, _up, _key) = app_with_limits_on(&url, "sock:").await;
    let in_db = |db: &str| {
        sock_cli(&["-n", db, "--scan", "--pattern", "sock:*"])
            .lines()
            .count()
    };
    assert!(in_db("4") > 0, "the keys are in database 4");
    assert_eq!(in_db("0"), 0, "and not in database 0");

    let url = format!("redis+unix://{socket_arg}");
    let (_t, _up, _key) = app_with_limits_on(&url, "sock2:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_serves_limits_and_sessions_on_one_hash_tag() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _nodes: Vec<RedisProc> = ports
        .iter()
        .map(|p| {
            let node_dir = dir.path().join(p.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            redis_server(
                &node_dir,
                &["--port", &p.to_string(), "--cluster-enabled", "yes"],
            )
        })
        .collect();
    for p in &ports {
        wait_until("a cluster node", || cli(*p, &["ping"]).contains("PONG"));
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{:?}", created);
    for p in &ports {
        wait_until("cluster_state:ok", || {
            cli(*p, &["cluster", "info"]).contains("cluster_state:ok")
        });
    }

    let url = format!("redis+cluster://{}", addrs.join(","));
    let (_t, _up, _key) = app_with_limits_on(&url, "topo:").await;

    // Every key carries the prefix's hash tag, so they all sit on the node owning its slot.
    let mut keys = Vec::new();
    for p in &ports {
        keys.extend(
            cli(*p, &["--scan", "--pattern", "*"])
                .lines()
                .map(str::to_string),
        );
    }
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.starts_with("{topo:}")), "{keys:?}");
    let holders = ports
        .iter()
        .filter(|p| cli(**p, &["dbsize"]).trim() != "0")
        .count();
    assert_eq!(holders, 1, "one slot, one node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_is_found_and_followed_after_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let (master, replica, sentinel) = (free_port(), free_port(), free_port());
    let _m = redis_server(dir.path(), &["--port", &master.to_string()]);
    let _r = redis_server(
        dir.path(),
        &[
            "--port",
            &replica.to_string(),
            "--replicaof",
            "127.0.0.1",
            &master.to_string(),
        ],
    );
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sentinel}\nbind 127.0.0.1\nsentinel monitor topo 127.0.0.1 {master} 1\n\
             sentinel down-after-milliseconds topo 1000\nsentinel failover-timeout topo 5000\n"
        ),
    )
    .unwrap();
    let _s = RedisProc(
        Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the replica in sync", || {
        cli(replica, &["info", "replication"]).contains("master_link_status:up")
    });
    wait_until("the sentinel", || {
        cli(sentinel, &["sentinel", "get-master-addr-by-name", "topo"])
            .contains(&master.to_string())
    });

    let url = format!("redis+sentinel://127.0.0.1:{sentinel}/topo");
    let (t, _up, key) = app_with_limits_on(&url, "topo:").await;
    assert_ne!(
        cli(master, &["dbsize"]).trim(),
        "0",
        "the keys are on the master"
    );

    // Fail over: the replica becomes the master and the old master a replica of it. Sentinel
    // learns of replicas from the master's INFO (every 10 s) and answers NOGOODSLAVE until
    // then, so wait for it to list the replica and retry until a failover is under way.
    wait_until("the sentinel to know the replica", || {
        cli(sentinel, &["sentinel", "replicas", "topo"]).contains(&replica.to_string())
    });
    wait_until("a failover to start", || {
        let answer = cli(sentinel, &["sentinel", "failover", "topo"]);
        answer.contains("OK") || answer.contains("INPROG")
    });
    wait_until("the failover", || {
        cli(sentinel, &["sentinel", "get-master-addr-by-name", "topo"])
            .contains(&replica.to_string())
            && cli(master, &["info", "replication"]).contains("role:slave")
    });
    // cch follows the new master (a READONLY answer from the old one, or a broken link, makes
    // it ask Sentinel again): a new user's window is written there, and the first user's
    // window, carried over by replication, still refuses.
    let keys_before = cli(replica, &["dbsize"]).trim().parse::<i64>().unwrap_or(0);
    let (_, u2) = t
        .post("/api/v1/users", json!({"name": "u2", "rpm_limit": 1000}))
        .await;
    let (_, k2) = t
        .post(
            &format!("/api/v1/users/{}/keys", u2["id"]),
            json!({"name": "k2"}),
        )
        .await;
    let key2 = k2["key"].as_str().unwrap().to_string();
    let mut written = false;
    for _ in 0..100 {
        assert_eq!(send(&t, &key2).await, 200);
        let (_, ready) = t.get("/ready").await;
        let keys = cli(replica, &["dbsize"]).trim().parse::<i64>().unwrap_or(0);
        if keys > keys_before && ready["redis"] == "ok" {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "new windows are written on the promoted replica");
    assert_eq!(
        send(&t, &key).await,
        429,
        "the first user's window still holds"
    );
}
