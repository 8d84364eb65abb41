//! Command-line options of the soak tool.

use std::path::PathBuf;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fixed-rate (open-loop) load for `duration`, sampled every `interval` into a CSV and a PNG.
    Soak,
    /// Closed loop at `concurrency`: throughput and process CPU per request.
    Closed,
    /// The fault suite: outages of Redis and Postgres, a half-failing provider, SIGTERM with
    /// open streams, SIGKILL of one of two instances; each reported in figures.
    Faults,
}

/// Percent of requests that get each injected upstream fault.
#[derive(Debug, Clone, Copy)]
pub struct FaultMix {
    /// Upstream answers 529 overloaded on the first attempt (cch retries).
    pub error_pct: f64,
    /// Upstream closes the connection in the middle of the body.
    pub drop_pct: f64,
    /// Upstream pauses `stall` in the middle of the answer (longer than cch's timeouts).
    pub stall_pct: f64,
}

/// Every option, with its default.
#[derive(Debug, Clone)]
pub struct Opts {
    pub mode: Mode,
    pub cch: PathBuf,
    pub rate: f64,
    pub duration: Duration,
    pub interval: Duration,
    pub connections: usize,
    pub concurrency: usize,
    pub warmup: Duration,
    pub stream_pct: f64,
    pub faults: FaultMix,
    pub stall: Duration,
    pub provider_timeout: Duration,
    pub users: usize,
    pub sessions_per_user: usize,
    pub rejecting_user: bool,
    pub baseline: Duration,
    pub out: PathBuf,
    pub postgres: Option<String>,
    pub redis: Option<String>,
    pub env: Vec<(String, String)>,
    pub keep_data: bool,
    pub max_inflight: usize,
    pub seed: u64,
    pub font: Option<PathBuf>,
    pub slow: Option<Duration>,
    /// Faults mode: which scenarios (redis, postgres, providers, sigterm, kill).
    pub scenarios: Vec<String>,
    /// Soak mode: an admin `POST` (path and query) sent once, this long after the load starts
    /// (e.g. a log cleanup, to see what it does to the proxy's latency).
    pub admin_post: Option<(Duration, String)>,
}

pub const USAGE: &str = "\
usage: cch-soak [soak|closed] [options]

  soak (default)         fixed-rate load for --duration, samples every --interval to CSV + PNG
  closed                 closed loop at --concurrency for --duration: req/s and CPU per request
  faults                 the fault suite against private Postgres and Redis servers it starts
                         (needs initdb/pg_ctl and redis-server): --scenarios lists which of
                         redis,postgres,providers,sigterm,kill (default all); --rate is the
                         load during each (default 500)

  --cch PATH             cch binary (default: <repo>/target/release/cch)
  --rate N               requests per second, soak mode (default 1000)
  --duration D           how long to load: 30m, 90s, 1h, or seconds (soak 30m, closed 20s)
  --interval D           sampling period (default 10s)
  --connections N        soak: N connections take the scheduled sends in turn; 0 (default) =
                         one task per request on a shared pool (faults need that: a stall
                         would hold one of N connections)
  --concurrency N        closed loop workers (default 16)
  --warmup D             closed: unmeasured warm-up (default 3s)
  --stream-pct P         percent of streaming requests (default 50; closed default 0)
  --faults E,D,S         percent of upstream errors, mid-body drops, stalls (default 5,2,1;
                         closed default 0,0,0)
  --no-faults            same as --faults 0,0,0
  --stall D              length of an injected stall (default 3s)
  --provider-timeout D   first-byte, idle and request timeouts of the providers (default 2s)
  --users N              users, one key each, every kind of limit (default 4)
  --sessions N           sessions per user (default 16)
  --no-rejecting-user    no user whose RPM limit rejects part of its traffic (soak has one
                         by default: 80 % of its RPM passes; closed never has one)
  --baseline D           direct-to-upstream run before the soak, for added latency (default 10s)
  --out DIR              output folder (default benches/soak/out/<mode>-<unix time>)
  --postgres URL         run on PostgreSQL: a fresh database is created on this server
                         (e.g. postgres://postgres@127.0.0.1:5432) and dropped afterwards
  --redis URL            run with Redis (e.g. redis://127.0.0.1:6379/15); keys use a unique
                         prefix and are deleted afterwards
  --env K=V              extra environment for cch (repeatable)
  --keep-data            keep DATA_DIR (and the Postgres database)
  --max-inflight N       soak: sends skipped (and counted) beyond this many in flight (4096)
  --seed N               random seed of the request mix (default 1)
  --font PATH            TTF font for the plot (default: DejaVu Sans from the system)
  --admin-post D:PATH    soak: POST the admin PATH (with its query) once, D after the load
                         starts, and report when it answered (e.g. 120s:/api/v1/logs/cleanup)
  --slow-ms N            list clean requests slower than N ms in slow.csv (send time,
                         latency), to find the period of stalls
";

/// Parses `30m`, `90s`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (v, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n * mult))
        .ok_or_else(|| format!("not a duration: {v} (try 30m, 90s, 1h)"))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{flag}: not a number: {v}"))
}

fn percent(flag: &str, v: &str) -> Result<f64, String> {
    let p: f64 = number(flag, v)?;
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{flag}: {v} is not a percentage"))
    }
}

/// Parses the process arguments; `Err("")` means help was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = args.into_iter().peekable();
    let mode = match args.peek().map(String::as_str) {
        Some("closed") => {
            args.next();
            Mode::Closed
        }
        Some("soak") => {
            args.next();
            Mode::Soak
        }
        Some("faults") => {
            args.next();
            Mode::Faults
        }
        _ => Mode::Soak,
    };
    let closed = mode == Mode::Closed;
    let faults = mode == Mode::Faults;
    let mut o = Opts {
        mode,
        cch: repo.join("target/release/cch"),
        rate: if faults { 500.0 } else { 1000.0 },
        duration: Duration::from_secs(if closed { 20 } else { 30 * 60 }),
        interval: Duration::from_secs(10),
        connections: 0,
        concurrency: 16,
        warmup: Duration::from_secs(3),
        stream_pct: if closed { 0.0 } else { 50.0 },
        faults: if closed || faults {
            FaultMix {
                error_pct: 0.0,
                drop_pct: 0.0,
                stall_pct: 0.0,
            }
        } else {
            FaultMix {
                error_pct: 5.0,
                drop_pct: 2.0,
                stall_pct: 1.0,
            }
        },
        stall: Duration::from_secs(3),
        provider_timeout: Duration::from_secs(2),
        users: 4,
        sessions_per_user: 16,
        rejecting_user: !closed && !faults,
        baseline: Duration::from_secs(10),
        out: PathBuf::new(),
        postgres: None,
        redis: None,
        env: Vec::new(),
        keep_data: false,
        max_inflight: 4096,
        seed: 1,
        font: None,
        slow: None,
        scenarios: ["redis", "postgres", "providers", "sigterm", "kill"]
            .map(String::from)
            .to_vec(),
        admin_post: None,
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--cch" => o.cch = PathBuf::from(value()?),
            "--rate" => o.rate = number(&a, &value()?)?,
            "--duration" => o.duration = parse_duration(&value()?)?,
            "--interval" => o.interval = parse_duration(&value()?)?,
            "--connections" => o.connections = number(&a, &value()?)?,
            "--concurrency" => o.concurrency = number(&a, &value()?)?,
            "--warmup" => o.warmup = parse_duration(&value()?)?,
            "--stream-pct" => o.stream_pct = percent(&a, &value()?)?,
            "--faults" => {
                let v = value()?;
                let parts: Vec<&str> = v.split(',').collect();
                let [e, d, s] = parts.as_slice() else {
                    return Err("--faults takes three percentages: errors,drops,stalls".into());
                };
                o.faults = FaultMix {
                    error_pct: percent(&a, e)?,
                    drop_pct: percent(&a, d)?,
                    stall_pct: percent(&a, s)?,
                };
            }
            "--no-faults" => {
                o.faults = FaultMix {
                    error_pct: 0.0,
                    drop_pct: 0.0,
                    stall_pct: 0.0,
                }
            }
            "--stall" => o.stall = parse_duration(&value()?)?,
            "--provider-timeout" => o.provider_timeout = parse_duration(&value()?)?,
            "--users" => o.users = number(&a, &value()?)?,
            "--sessions" => o.sessions_per_user = number(&a, &value()?)?,
            "--no-rejecting-user" => o.rejecting_user = false,
            "--baseline" => o.baseline = parse_duration(&value()?)?,
            "--out" => o.out = PathBuf::from(value()?),
            "--postgres" => o.postgres = Some(value()?.trim_end_matches('/').to_string()),
            "--redis" => o.redis = Some(value()?),
            "--env" => {
                let v = value()?;
                let (k, val) = v.split_once('=').ok_or("--env takes KEY=VALUE")?;
                o.env.push((k.to_string(), val.to_string()));
            }
            "--keep-data" => o.keep_data = true,
            "--max-inflight" => o.max_inflight = number(&a, &value()?)?,
            "--seed" => o.seed = number(&a, &value()?)?,
            "--font" => o.font = Some(PathBuf::from(value()?)),
            "--admin-post" => {
                let v = value()?;
                let (at, path) = v.split_once(':').ok_or_else(|| {
                    format!("{a} takes DELAY:PATH, e.g. 120s:/api/v1/logs/cleanup")
                })?;
                o.admin_post = Some((parse_duration(at)?, path.to_string()));
            }
            "--scenarios" => {
                o.scenarios = value()?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "--slow-ms" => {
                o.slow = Some(Duration::from_secs_f64(
                    number::<f64>(&a, &value()?)? / 1000.0,
                ))
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let f = o.faults;
    if f.error_pct + f.drop_pct + f.stall_pct > 100.0 {
        return Err("--faults: the three percentages add up to more than 100".into());
    }
    if o.rate <= 0.0 || o.users == 0 || o.sessions_per_user == 0 || o.concurrency == 0 {
        return Err("--rate, --users, --sessions and --concurrency must be positive".into());
    }
    if o.interval.is_zero() {
        return Err("--interval must be positive".into());
    }
    if o.provider_timeout < Duration::from_secs(1) {
        return Err("--provider-timeout: cch accepts 1s at least".into());
    }
    if o.out.as_os_str().is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = match o.mode {
            Mode::Closed => "closed",
            Mode::Faults => "faults",
            Mode::Soak => "soak",
        };
        o.out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("out")
            .join(format!("{name}-{now}"));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Opts, String> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn durations_and_modes() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("x").is_err());
        let o = p(&["closed"]).unwrap();
        assert_eq!(o.mode, Mode::Closed);
        assert_eq!(o.faults.error_pct, 0.0);
        let o = p(&["--faults", "1,2,3", "--rate", "500"]).unwrap();
        assert_eq!(o.mode, Mode::Soak);
        assert_eq!(o.faults.stall_pct, 3.0);
        assert_eq!(o.rate, 500.0);
        assert!(p(&["--faults", "60,50,0"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }
}
