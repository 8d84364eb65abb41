//! A TCP acceptor that disables Nagle's algorithm on every client connection, so small SSE
//! events are sent at once instead of waiting for the client's delayed ACK (~40 ms per event).

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

/// Wraps poem's TCP acceptor and sets `TCP_NODELAY` on accepted sockets.
pub struct NoDelayAcceptor(pub TcpAcceptor);

impl Acceptor for NoDelayAcceptor {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(TcpStream, LocalAddr, RemoteAddr, Scheme)> {
        let accepted = self.0.accept().await?;
        if let Err(e) = accepted.0.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        Ok(accepted)
    }
}
