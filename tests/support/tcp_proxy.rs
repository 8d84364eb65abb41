//! A TCP proxy a test can break on purpose: it forwards 127.0.0.1:<random> to an upstream
//! (Redis, Postgres, a fake provider) until told to `cut` (close every connection and drop new
//! ones at once), `black_hole` (connections stay open but go silent for good, like a dead
//! network path or a hung server), or `restore` (new connections are forwarded again).

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Open,
    /// Close live connections; accept new ones and close them immediately.
    Cut,
    /// Hold live and new connections open without forwarding a byte, until the proxy is
    /// dropped (even after `restore`, as with a path that silently died).
    BlackHole,
    /// The proxy is being dropped: every task ends.
    Closed,
}

/// A running proxy; dropping it closes everything.
pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (a `host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ProxyMode::Open);
        let accept = tokio::spawn(accept_loop(listener, upstream, mode.clone()));
        Ok(Self { addr, mode, accept })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every live connection and refuses (accepts then closes) new ones.
    pub fn cut(&self) {
        self.mode.send_replace(ProxyMode::Cut);
    }

    /// Stops forwarding on live and new connections while keeping them open; those connections
    /// never forward again (clients must notice and reconnect), later ones do after `restore`.
    pub fn black_hole(&self) {
        self.mode.send_replace(ProxyMode::BlackHole);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.mode.send_replace(ProxyMode::Open);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.mode.send_replace(ProxyMode::Closed);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, mode: watch::Sender<ProxyMode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let rx = mode.subscribe();
        let upstream = upstream.clone();
        tokio::spawn(serve(client, upstream, rx));
    }
}

/// Handles one client connection according to the mode, until the mode says to close it.
async fn serve(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<ProxyMode>) {
    let current = *mode.borrow_and_update();
    match current {
        ProxyMode::Cut | ProxyMode::Closed => {
            let _ = client.shutdown().await;
            return;
        }
        ProxyMode::BlackHole => {
            hold_until_closed(&mut mode).await;
            return;
        }
        ProxyMode::Open => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *mode.borrow_and_update();
                match now {
                    ProxyMode::Open => continue,
                    ProxyMode::Cut | ProxyMode::Closed => return,
                    ProxyMode::BlackHole => {
                        hold_until_closed(&mut mode).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Keeps the caller's sockets open, silent, until the proxy is dropped.
async fn hold_until_closed(mode: &mut watch::Receiver<ProxyMode>) {
    while *mode.borrow_and_update() != ProxyMode::Closed {
        if mode.changed().await.is_err() {
            return;
        }
    }
}
