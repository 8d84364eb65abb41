//! A minimal SOCKS5 proxy for tests: RFC 1928 `CONNECT` (IPv4, IPv6 and domain-name targets)
//! with either no authentication or RFC 1929 username/password authentication.
//!
//! It counts the connections it carried and can be stopped: [`Socks5Proxy::stop`] closes the
//! listener (further connects are refused) and cuts every tunnel still open.
#![allow(dead_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    refused_auth: AtomicUsize,
    targets: Mutex<Vec<String>>,
}

/// A running SOCKS5 proxy on `127.0.0.1`. Dropping it stops it.
pub struct Socks5Proxy {
    addr: SocketAddr,
    credentials: Option<(String, String)>,
    counters: Arc<Counters>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

impl Socks5Proxy {
    /// Starts a proxy that requires no authentication (it still accepts clients that offer
    /// username/password, whatever the credentials).
    pub async fn start() -> Socks5Proxy {
        Socks5Proxy::start_with(None).await
    }

    /// Starts a proxy that requires these RFC 1929 credentials; a client with no or other
    /// credentials is refused.
    pub async fn start_with_auth(user: &str, pass: &str) -> Socks5Proxy {
        Socks5Proxy::start_with(Some((user.to_string(), pass.to_string()))).await
    }

    /// Starts a proxy with optional required credentials (`(user, password)`).
    pub async fn start_with(credentials: Option<(String, String)>) -> Socks5Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SOCKS5 proxy");
        let addr = listener.local_addr().expect("local addr");
        let counters = Arc::new(Counters::default());
        let (c, creds) = (counters.clone(), credentials.clone());
        let task = tokio::spawn(async move {
            let mut tunnels = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (c, creds) = (c.clone(), creds.clone());
                        tunnels.spawn(async move {
                            let _ = handle(stream, creds, c).await;
                        });
                    }
                    Some(_) = tunnels.join_next(), if !tunnels.is_empty() => {}
                }
            }
        });
        Socks5Proxy {
            addr,
            credentials,
            counters,
            task: Mutex::new(Some(task)),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy URL for clients: `socks5://[user:pass@]127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((u, p)) => format!("socks5://{u}:{p}@{}", self.addr),
            None => format!("socks5://{}", self.addr),
        }
    }

    /// Number of `CONNECT` tunnels established (connections carried to a target).
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Number of clients refused for missing or wrong credentials.
    pub fn refused_auth(&self) -> usize {
        self.counters.refused_auth.load(Ordering::Relaxed)
    }

    /// The `host:port` targets of the established tunnels, in order.
    pub fn targets(&self) -> Vec<String> {
        self.counters.targets.lock().unwrap().clone()
    }

    /// Closes the listener (further connects are refused) and cuts every open tunnel. Returns
    /// once the listener is closed.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Reply codes (RFC 1928 §6).
const REP_OK: u8 = 0x00;
const REP_FAILURE: u8 = 0x01;
const REP_HOST_UNREACHABLE: u8 = 0x04;
const REP_REFUSED: u8 = 0x05;
const REP_CMD_NOT_SUPPORTED: u8 = 0x07;
const REP_ATYP_NOT_SUPPORTED: u8 = 0x08;

async fn reply(stream: &mut TcpStream, rep: u8, bound: Option<SocketAddr>) -> io::Result<()> {
    let mut out = vec![5, rep, 0];
    match bound {
        Some(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        None => out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0]),
    }
    stream.write_all(&out).await
}

async fn handle(
    mut client: TcpStream,
    creds: Option<(String, String)>,
    counters: Arc<Counters>,
) -> io::Result<()> {
    // Greeting: VER NMETHODS METHODS...
    let mut hdr = [0u8; 2];
    client.read_exact(&mut hdr).await?;
    if hdr[0] != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; hdr[1] as usize];
    client.read_exact(&mut methods).await?;
    let method = if creds.is_some() {
        methods.contains(&2).then_some(2u8)
    } else if methods.contains(&0) {
        Some(0)
    } else {
        methods.contains(&2).then_some(2u8)
    };
    let Some(method) = method else {
        counters.refused_auth.fetch_add(1, Ordering::Relaxed);
        client.write_all(&[5, 0xFF]).await?;
        return Ok(());
    };
    client.write_all(&[5, method]).await?;
    if method == 2 {
        // RFC 1929: VER(1) ULEN UNAME PLEN PASSWD
        let mut b = [0u8; 2];
        client.read_exact(&mut b).await?;
        let mut user = vec![0u8; b[1] as usize];
        client.read_exact(&mut user).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut pass = vec![0u8; plen[0] as usize];
        client.read_exact(&mut pass).await?;
        let ok = match &creds {
            Some((u, p)) => user == u.as_bytes() && pass == p.as_bytes(),
            None => true,
        };
        client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            counters.refused_auth.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut l = [0u8; 1];
            client.read_exact(&mut l).await?;
            let mut d = vec![0u8; l[0] as usize];
            client.read_exact(&mut d).await?;
            String::from_utf8_lossy(&d).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            format!("[{}]", Ipv6Addr::from(a))
        }
        _ => {
            reply(&mut client, REP_ATYP_NOT_SUPPORTED, None).await?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    if req[1] != 1 {
        reply(&mut client, REP_CMD_NOT_SUPPORTED, None).await?;
        return Ok(());
    }
    let target = format!("{host}:{port}");
    let lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut upstream = match TcpStream::connect((lookup.as_str(), port)).await {
        Ok(s) => s,
        Err(e) => {
            let rep = match e.kind() {
                io::ErrorKind::ConnectionRefused => REP_REFUSED,
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput => REP_HOST_UNREACHABLE,
                _ => REP_FAILURE,
            };
            reply(&mut client, rep, None).await?;
            return Ok(());
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    counters.connections.fetch_add(1, Ordering::Relaxed);
    counters.targets.lock().unwrap().push(target);
    reply(&mut client, REP_OK, upstream.local_addr().ok()).await?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}
