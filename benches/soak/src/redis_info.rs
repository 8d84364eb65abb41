//! Just enough of the Redis protocol to sample `used_memory`, count this run's keys and delete
//! them afterwards (no client crate needed for three commands).

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A parsed reply.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

struct Conn {
    io: BufReader<TcpStream>,
}

/// Host, port and database number of a `redis://host:port/db` URL (no TLS, no password).
fn parse_url(url: &str) -> Result<(String, u16, u32), String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or("only redis:// URLs can be sampled")?;
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, "0"));
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "6379"));
    let db = if db.is_empty() { "0" } else { db };
    Ok((
        host.to_string(),
        port.parse().map_err(|_| "bad port")?,
        db.parse().map_err(|_| "bad database number")?,
    ))
}

impl Conn {
    async fn open(url: &str) -> Result<Self, String> {
        let (host, port, db) = parse_url(url)?;
        let sock = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let mut c = Conn {
            io: BufReader::new(sock),
        };
        c.cmd(&["SELECT", &db.to_string()]).await?;
        Ok(c)
    }

    async fn cmd(&mut self, args: &[&str]) -> Result<Reply, String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.io
            .get_mut()
            .write_all(out.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        self.read().await
    }

    fn read(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, String>> + '_>> {
        Box::pin(async move {
            let mut line = String::new();
            self.io
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            let line = line.trim_end();
            let (kind, rest) = line.split_at(line.len().min(1));
            match kind {
                "+" => Ok(Reply::Simple(rest.to_string())),
                "-" => Err(format!("redis: {rest}")),
                ":" => Ok(Reply::Int(rest.parse().map_err(|_| "bad integer")?)),
                "$" => {
                    let n: i64 = rest.parse().map_err(|_| "bad length")?;
                    if n < 0 {
                        return Ok(Reply::Bulk(None));
                    }
                    let mut buf = vec![0u8; n as usize + 2];
                    self.io
                        .read_exact(&mut buf)
                        .await
                        .map_err(|e| e.to_string())?;
                    buf.truncate(n as usize);
                    Ok(Reply::Bulk(Some(buf)))
                }
                "*" => {
                    let n: i64 = rest.parse().map_err(|_| "bad length")?;
                    let mut items = Vec::new();
                    for _ in 0..n.max(0) {
                        items.push(self.read().await?);
                    }
                    Ok(Reply::Array(items))
                }
                _ => Err(format!("unexpected redis reply: {line}")),
            }
        })
    }

    /// Keys matching `prefix*`, one SCAN page at a time.
    async fn scan(&mut self, prefix: &str) -> Result<Vec<String>, String> {
        let pattern = format!("{prefix}*");
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let r = self
                .cmd(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])
                .await?;
            let Reply::Array(mut parts) = r else {
                return Err("bad SCAN reply".into());
            };
            let (Some(Reply::Array(page)), Some(Reply::Bulk(Some(next)))) =
                (parts.pop(), parts.pop())
            else {
                return Err("bad SCAN reply".into());
            };
            keys.extend(page.into_iter().filter_map(|k| match k {
                Reply::Bulk(Some(b)) => String::from_utf8(b).ok(),
                _ => None,
            }));
            cursor = String::from_utf8_lossy(&next).to_string();
            if cursor == "0" {
                return Ok(keys);
            }
        }
    }
}

/// `used_memory` of the server and the number of keys with `prefix` in the URL's database.
pub async fn sample(url: &str, prefix: &str) -> Result<(u64, u64), String> {
    let mut c = Conn::open(url).await?;
    let info = match c.cmd(&["INFO", "memory"]).await? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).to_string(),
        Reply::Simple(s) => s,
        other => return Err(format!("unexpected INFO reply: {other:?}")),
    };
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no used_memory in INFO")?;
    let keys = c.scan(prefix).await?.len() as u64;
    Ok((used, keys))
}

/// Deletes every key with `prefix`; returns how many.
pub async fn delete_prefix(url: &str, prefix: &str) -> Result<u64, String> {
    let mut c = Conn::open(url).await?;
    let keys = c.scan(prefix).await?;
    let mut n = 0;
    for chunk in keys.chunks(500) {
        let mut args = vec!["UNLINK"];
        args.extend(chunk.iter().map(String::as_str));
        if let Reply::Int(d) = c.cmd(&args).await? {
            n += d as u64;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6379/15").unwrap(),
            ("127.0.0.1".into(), 6379, 15)
        );
        assert_eq!(
            parse_url("redis://localhost").unwrap(),
            ("localhost".into(), 6379, 0)
        );
        assert!(parse_url("rediss://x").is_err());
    }
}
