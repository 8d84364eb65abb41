//! Reading a client request body under two bounds: its own size (`MAX_BODY_BYTES`) and the
//! bytes of bodies buffered at once across all connections (`MAX_BUFFERED_BODY_BYTES`, see
//! `app::body_budget`). A body announced by `Content-Length` reserves its size before the first
//! byte is read; a chunked one reserves as it arrives.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use poem::Body;

use crate::app::body_budget::{BodyBudget, BodyReservation};
use crate::app::proxy::ProxyResponse;
use crate::domain::client_error::GatewayErrorKind;
use crate::domain::format::ClientFormat;

/// Most bytes allocated up front from a `Content-Length` (the rest grows as bytes arrive, so a
/// client announcing a large body and sending nothing makes us allocate little).
const PREALLOCATE_MAX: usize = 1 << 20;

/// Seconds a client is told to wait when the body budget is full.
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

/// The answer when the budget is spent: 503 in the client's format, with `retry-after`.
pub fn busy_response(format: ClientFormat) -> ProxyResponse {
    let msg = "the gateway is buffering too many request bodies right now \
               (MAX_BUFFERED_BODY_BYTES); retry shortly";
    let mut resp = ProxyResponse::error(format, GatewayErrorKind::NoProvider, msg);
    resp.headers
        .push(("retry-after".into(), BUSY_RETRY_AFTER_SECS.to_string()));
    resp
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyReadError {
    /// Over `MAX_BODY_BYTES`.
    TooLarge,
    /// The budget of buffered body bytes is spent; the client should retry shortly.
    Busy,
    /// The connection failed or the body stalled (the message says which).
    Io(std::io::Error),
}

/// Reads the whole body; the reservation must be kept as long as the bytes are held.
pub async fn read_body(
    body: Body,
    declared: Option<usize>,
    max: usize,
    budget: &BodyBudget,
) -> Result<(Bytes, BodyReservation), BodyReadError> {
    let mut held = BodyReservation::default();
    if let Some(n) = declared
        && !budget.try_cover(&mut held, n as u64)
    {
        return Err(BodyReadError::Busy);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(max).min(PREALLOCATE_MAX));
    let mut stream = std::pin::pin!(body.into_bytes_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyReadError::Io)?;
        let total = buf.len() + chunk.len();
        if total > max {
            return Err(BodyReadError::TooLarge);
        }
        if !budget.try_cover(&mut held, total as u64) {
            return Err(BodyReadError::Busy);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), held))
}
