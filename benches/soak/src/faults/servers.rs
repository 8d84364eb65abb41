//! The private servers a fault scenario runs against: a `redis-server` and a PostgreSQL
//! cluster (initdb) on their own ports in a temporary folder, stopped and removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::Opts;

pub(super) fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

pub(super) fn wait_for(
    what: &str,
    max: Duration,
    mut ok: impl FnMut() -> bool,
) -> Result<(), String> {
    let until = Instant::now() + max;
    while !ok() {
        if Instant::now() > until {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A private `redis-server` (no persistence: a restart comes back empty).
pub(super) struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(super) fn start(dir: &Path) -> Result<Self, String> {
        let mut r = Self {
            port: free_port()?,
            dir: dir.to_path_buf(),
            child: None,
        };
        r.spawn()?;
        Ok(r)
    }

    pub(super) fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        let port = self.port;
        wait_for("redis-server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    pub(super) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private PostgreSQL cluster (initdb), run as the `postgres` user when this runs as root.
pub(super) struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    pub(super) running: bool,
}

pub(super) fn pg_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server binaries in /usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

impl PrivatePostgres {
    pub(super) fn start(dir: &Path) -> Result<Self, String> {
        let pg = Self {
            bin: pg_bin()?,
            dir: dir.to_path_buf(),
            port: free_port()?,
            running: false,
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown {} to postgres", dir.display()));
            }
        }
        let d = dir.display().to_string();
        pg.run(
            "initdb",
            &["-D", &d, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        let mut pg = pg;
        pg.resume()?;
        Ok(pg)
    }

    pub(super) fn run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(prog);
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{prog}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{prog} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    pub(super) fn resume(&mut self) -> Result<(), String> {
        let d = self.dir.display().to_string();
        let opts = format!("-p {} -k {d} -c listen_addresses=127.0.0.1", self.port);
        let log = format!("{d}/server.log");
        self.run(
            "pg_ctl",
            &["-D", &d, "-l", &log, "-w", "-o", &opts, "start"],
        )?;
        self.running = true;
        Ok(())
    }

    pub(super) fn stop(&mut self) -> Result<(), String> {
        let d = self.dir.display().to_string();
        self.running = false;
        self.run("pg_ctl", &["-D", &d, "-m", "fast", "-w", "stop"])
    }

    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub(super) fn query(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .arg(format!("{}/{db}", self.url()))
            .args(["-tAq", "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let d = self.dir.display().to_string();
            let _ = self.run("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]);
        }
    }
}

/// The private servers of one scenario, in a temporary folder under /tmp (the `postgres` user
/// must be able to reach it).
pub(super) struct Servers {
    pub(super) pg: PrivatePostgres,
    pub(super) redis: PrivateRedis,
    root: PathBuf,
}

impl Servers {
    pub(super) fn start(name: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!("cch-faults-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("redis")).map_err(|e| e.to_string())?;
        let pg = PrivatePostgres::start(&root.join("pg"))?;
        let redis = PrivateRedis::start(&root.join("redis"))?;
        Ok(Self { pg, redis, root })
    }

    /// Options for cch on these servers.
    pub(super) fn opts(&self, o: &Opts, name: &str) -> Opts {
        let mut o = o.clone();
        o.postgres = Some(self.pg.url());
        o.redis = Some(self.redis.url());
        o.out = o.out.join(name);
        o
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.redis.kill();
        if self.pg.running {
            let _ = self.pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
