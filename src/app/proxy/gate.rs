//! The content gate, between one upstream attempt and the answer: a 2xx that carries no answer
//! (a "fake 200", see `domain::content_gate`) becomes a failed attempt, so it is retried, fails
//! over and counts for the breaker like a 5xx. A stream is held until its first content event,
//! `MAX_HELD_EVENTS` events, `MAX_HELD_BYTES` bytes (`domain::content_gate`) or the provider's
//! first-byte deadline, whichever comes first, and then released at once; nothing has reached
//! the client before.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::domain::content_gate::{Fake200, GateVerdict, StreamGate, inspect_full_body};
use crate::domain::convert::dispatch;
use crate::domain::failure::ErrorClass;
use crate::domain::provider::Provider;

use super::attempt::{AttemptErr, AttemptOk};
use super::convert_io::Prepared;

/// The failed attempt a fake success becomes (a provider error, named in the chain).
fn fake_200_error(status: u16, fake: Fake200) -> AttemptErr {
    AttemptErr {
        class: ErrorClass::ProviderError,
        status: Some(status),
        message: fake.detail,
        proxy_failed: false,
        timeout: false,
        detection: Some(fake.kind.name()),
    }
}

/// Judges a successful attempt before anything is sent to the client. `started` is when the
/// attempt began: a held stream is released, not failed, at its first-byte deadline.
pub(super) async fn content_gate(
    ok: AttemptOk,
    provider: &Provider,
    prepared: &Prepared,
    started: Instant,
) -> Result<AttemptOk, AttemptErr> {
    match ok {
        AttemptOk::Full {
            status,
            headers,
            body,
        } => {
            let ct = headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str());
            match inspect_full_body(ct, &body) {
                Some(fake) => Err(fake_200_error(status, fake)),
                None => Ok(AttemptOk::Full {
                    status,
                    headers,
                    body,
                }),
            }
        }
        AttemptOk::Stream {
            status,
            headers,
            first,
            mut rest,
        } => {
            let mut gate = StreamGate::new(
                dispatch::stream_to_claude(prepared.provider_format),
                !prepared.converted,
            );
            let budget = Duration::from_millis(
                u64::try_from(provider.timeouts.first_byte_timeout_ms).unwrap_or(0),
            );
            let deadline = tokio::time::Instant::from_std(started + budget);
            let mut verdict = gate.push(&first);
            // Bounded by the gate: at most MAX_HELD_EVENTS events or MAX_HELD_BYTES bytes (plus
            // the chunk that crossed the line) are held before release.
            let mut held = BytesMut::from(first.as_ref());
            while verdict == GateVerdict::Hold {
                match tokio::time::timeout_at(deadline, rest.next()).await {
                    // The first-byte deadline: release what is held; the idle timeout takes over.
                    Err(_) => break,
                    Ok(Some(Ok(chunk))) => {
                        verdict = gate.push(&chunk);
                        held.extend_from_slice(&chunk);
                    }
                    Ok(Some(Err(e))) => {
                        return Err(AttemptErr {
                            class: ErrorClass::SystemError,
                            status: Some(status),
                            message: e.message,
                            proxy_failed: false,
                            timeout: false,
                            detection: None,
                        });
                    }
                    Ok(None) => verdict = gate.ended(),
                }
            }
            match verdict {
                GateVerdict::Fail(fake) => Err(fake_200_error(status, fake)),
                GateVerdict::Hold | GateVerdict::Release => Ok(AttemptOk::Stream {
                    status,
                    headers,
                    first: Bytes::from(held),
                    rest,
                }),
            }
        }
        client_error @ AttemptOk::ClientError { .. } => Ok(client_error),
    }
}
