//! What `REDIS_URL` names: one server (`redis://`, `rediss://`, or on a Unix socket
//! `unix:///path?db=N`, `redis+unix:///path`), a master watched by Sentinel
//! (`redis+sentinel://[user:password@]host:port[,host:port…]/master-name[/db]`, the password
//! being the master's), or a Cluster (`redis+cluster://[user:password@]host:port,host:port…`,
//! or several `redis://` URLs separated by commas).

/// Where the shared counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Topology {
    /// One server, by URL.
    Single(String),
    /// A master found through Sentinel.
    Sentinel {
        /// `host:port` of each sentinel.
        sentinels: Vec<(String, u16)>,
        /// The monitored master's name.
        master: String,
        /// Database number on the master.
        db: i64,
        /// The master's user, if any.
        username: Option<String>,
        /// The master's password, if any.
        password: Option<String>,
    },
    /// A Cluster, by the URLs of its seed nodes.
    Cluster(Vec<String>),
}

impl Topology {
    /// Whether keys must share one hash tag (a script may only touch keys of one slot).
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Reads `REDIS_URL`. The error names what is wrong, never the password.
    pub(super) fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return sentinel(rest);
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let (auth, hosts) = split_auth(rest.trim_end_matches('/'));
            let nodes: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| format!("redis://{auth}{h}"))
                .collect();
            if nodes.is_empty() {
                return Err("redis+cluster:// names no node".into());
            }
            return Ok(Self::Cluster(nodes));
        }
        if url.contains(',') {
            let nodes: Vec<String> = url
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(bad) = nodes
                .iter()
                .find(|n| !(n.starts_with("redis://") || n.starts_with("rediss://")))
            {
                let scheme = bad.split("://").next().unwrap_or_default();
                return Err(format!(
                    "a Cluster node list takes redis:// or rediss:// URLs, not `{scheme}`"
                ));
            }
            return Ok(Self::Cluster(nodes));
        }
        Ok(Self::Single(url.to_string()))
    }
}

/// `user:password@` (kept with its `@`) and the rest.
fn split_auth(s: &str) -> (&str, &str) {
    match s.rfind('@') {
        Some(i) => (&s[..=i], &s[i + 1..]),
        None => ("", s),
    }
}

fn sentinel(rest: &str) -> Result<Topology, String> {
    let (auth, rest) = split_auth(rest);
    let (hosts, path) = rest
        .split_once('/')
        .ok_or("redis+sentinel:// needs the master's name: redis+sentinel://host:port/mymaster")?;
    let mut sentinels = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = match h.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("sentinel `{h}` has no valid port"))?,
            ),
            None => (h, 26379),
        };
        sentinels.push((host.to_string(), port));
    }
    if sentinels.is_empty() {
        return Err("redis+sentinel:// names no sentinel".into());
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let master = parts
        .next()
        .ok_or("redis+sentinel:// needs the master's name after the hosts")?
        .to_string();
    let db = match parts.next() {
        Some(d) => d
            .parse::<i64>()
            .map_err(|_| format!("`{d}` is not a database number"))?,
        None => 0,
    };
    let auth = auth.trim_end_matches('@');
    let (username, password) = match auth.split_once(':') {
        Some((u, p)) => (
            Some(u.to_string()).filter(|u| !u.is_empty()),
            Some(p.to_string()).filter(|p| !p.is_empty()),
        ),
        None if !auth.is_empty() => (Some(auth.to_string()), None),
        None => (None, None),
    };
    Ok(Topology::Sentinel {
        sentinels,
        master,
        db,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_urls_stay_as_they_are() {
        assert_eq!(
            Topology::parse("redis://:pw@127.0.0.1:6379/2"),
            Ok(Topology::Single("redis://:pw@127.0.0.1:6379/2".into()))
        );
    }

    #[test]
    fn clusters_by_scheme_or_by_list() {
        let expected = Topology::Cluster(vec![
            "redis://:pw@10.0.0.1:7000".into(),
            "redis://:pw@10.0.0.2:7000".into(),
        ]);
        assert_eq!(
            Topology::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000"),
            Ok(expected.clone())
        );
        assert_eq!(
            Topology::parse("redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7000"),
            Ok(expected.clone())
        );
        assert!(expected.is_cluster());
        assert!(Topology::parse("redis://a:1,http://b:2").is_err());
        assert!(Topology::parse("redis+cluster://").is_err());
    }

    #[test]
    fn sentinel_urls_name_hosts_master_db_and_the_masters_password() {
        assert_eq!(
            Topology::parse("redis+sentinel://:s3cret@s1:26379,s2/mymaster/3"),
            Ok(Topology::Sentinel {
                sentinels: vec![("s1".into(), 26379), ("s2".into(), 26379)],
                master: "mymaster".into(),
                db: 3,
                username: None,
                password: Some("s3cret".into()),
            })
        );
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel://s1:x/m",
            "redis+sentinel:///m",
            "redis+sentinel://s1/m/x",
        ] {
            let e = Topology::parse(bad).expect_err(bad);
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
