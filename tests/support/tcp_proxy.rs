//! A TCP proxy a test can break on purpose: it forwards 127.0.0.1:<random> to an upstream
//! (Redis, Postgres, a fake provider) until told to `cut` (close every connection and drop new
//! ones at once), `black_hole` (keep connections open but forward nothing: a hanging server),
//! or `restore` (forward again).

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
    /// Hold live and new connections open without forwarding a byte.
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

    /// Stops forwarding while keeping connections open, like a hung server.
    pub fn black_hole(&self) {
        self.mode.send_replace(ProxyMode::BlackHole);
    }

    /// Forwards again (connections held by a black hole are closed so clients reconnect).
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
            // Hold until the mode changes, then close so the client reconnects.
            let _ = mode.changed().await;
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
                        let _ = mode.changed().await;
                        return;
                    }
                }
            }
        }
    }
}
