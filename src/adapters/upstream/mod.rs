//! The upstream HTTP client (reqwest): one pooled client per distinct outbound proxy setting,
//! built on first use and reused; never a client per request.

mod origin_cache;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;

use crate::ports::upstream::{
    FailureKind, UpstreamClient, UpstreamFailure, UpstreamRequest, UpstreamResponse,
};

/// reqwest-backed upstream client with a pool per proxy URL (`None` = direct).
pub struct ReqwestUpstream {
    clients: RwLock<HashMap<Option<String>, reqwest::Client>>,
    connect_timeout: Duration,
    origins: origin_cache::OriginCache,
}

impl Default for ReqwestUpstream {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqwestUpstream {
    /// A client factory with a 10 s connect timeout.
    pub fn new() -> Self {
        Self {
            clients: RwLock::new(HashMap::new()),
            connect_timeout: Duration::from_secs(10),
            origins: origin_cache::OriginCache::default(),
        }
    }

    fn client(&self, proxy: Option<&str>) -> Result<reqwest::Client, UpstreamFailure> {
        let key = proxy.map(str::to_string);
        if let Ok(map) = self.clients.read()
            && let Some(c) = map.get(&key)
        {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(p) = proxy {
            let proxy = reqwest::Proxy::all(p).map_err(|e| {
                UpstreamFailure::new(FailureKind::Proxy, format!("invalid proxy URL: {e}"))
            })?;
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| {
            UpstreamFailure::new(FailureKind::Other, format!("cannot build HTTP client: {e}"))
        })?;
        if let Ok(mut map) = self.clients.write() {
            map.entry(key).or_insert_with(|| client.clone());
        }
        Ok(client)
    }
}

/// Maps a reqwest error to a failure kind without leaking URLs with credentials.
fn classify(e: &reqwest::Error, via_proxy: bool) -> UpstreamFailure {
    let chain = error_chain(e);
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() {
        let lower = chain.to_ascii_lowercase();
        if via_proxy && (lower.contains("proxy") || lower.contains("socks")) {
            FailureKind::Proxy
        } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
            FailureKind::Dns
        } else if lower.contains("tls")
            || lower.contains("certificate")
            || lower.contains("handshake")
        {
            FailureKind::Tls
        } else if via_proxy {
            // A connect error through a proxy is the proxy's (we cannot reach the upstream).
            FailureKind::Proxy
        } else {
            FailureKind::Connect
        }
    } else if e.is_body() || e.is_decode() {
        FailureKind::Body
    } else if e.is_request() {
        FailureKind::Connect
    } else {
        FailureKind::Other
    };
    UpstreamFailure::new(kind, strip_urls(&chain))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Removes `(url)` parts reqwest adds to messages: they could carry proxy credentials.
fn strip_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split(' ') {
        if part.contains("://") {
            out.push_str("<url>");
        } else {
            out.push_str(part);
        }
        out.push(' ');
    }
    out.trim_end().to_string()
}

#[async_trait]
impl UpstreamClient for ReqwestUpstream {
    async fn post(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamFailure> {
        let via_proxy = req.proxy_url.is_some();
        let client = self.client(req.proxy_url.as_deref())?;
        // A URL that does not parse goes to reqwest as text, which reports it as before.
        let mut builder = match self.origins.parse(&req.url) {
            Ok(url) => client.post(url),
            Err(_) => client.post(&req.url),
        };
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let send = builder.body(req.body).send();
        let resp = match tokio::time::timeout(req.header_timeout, send).await {
            Err(_) => {
                return Err(UpstreamFailure::new(
                    FailureKind::Timeout,
                    format!("no response within {} ms", req.header_timeout.as_millis()),
                ));
            }
            Ok(Err(e)) => return Err(classify(&e, via_proxy)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
        let body = resp
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|e| classify(&e, via_proxy)))
            .boxed();
        Ok(UpstreamResponse {
            status,
            headers,
            body,
        })
    }
}
