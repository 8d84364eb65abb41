//! Test helpers shared by the OpenAI converter tests: run a converter over SSE text split in
//! arbitrary places, and a tiny deterministic PRNG.

use crate::domain::convert::{OutEvent, StreamConverter};
use crate::domain::sse::SseParser;

/// Feeds `sse` to a fresh converter in the given chunk sizes (cycled) and collects all output,
/// including `finish()`. A converter error is recorded as an `!error` pseudo-event.
pub(crate) fn run_split<C: StreamConverter>(
    mut conv: C,
    sse: &str,
    cuts: &[usize],
) -> Vec<OutEvent> {
    let bytes = sse.as_bytes();
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    let mut failed = false;
    let mut feed =
        |evs: Vec<crate::domain::sse::SseEvent>, out: &mut Vec<OutEvent>, failed: &mut bool| {
            for e in evs {
                if *failed {
                    return;
                }
                match conv.push(&e) {
                    Ok(o) => out.extend(o),
                    Err(err) => {
                        out.push(OutEvent {
                            event: Some("!error".into()),
                            data: err.to_string(),
                        });
                        *failed = true;
                    }
                }
            }
        };
    while pos < bytes.len() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(bytes.len())
            .max(1);
        let end = (pos + n).min(bytes.len());
        let evs = parser.push(&bytes[pos..end]).expect("parse");
        feed(evs, &mut out, &mut failed);
        pos = end;
        i += 1;
    }
    if let Some(e) = parser.finish().expect("finish") {
        feed(vec![e], &mut out, &mut failed);
    }
    if !failed {
        out.extend(conv.finish());
    }
    out
}

/// Whole input in one chunk.
pub(crate) fn run<C: StreamConverter>(conv: C, sse: &str) -> Vec<OutEvent> {
    run_split(conv, sse, &[usize::MAX])
}

/// Serialises events as SSE text.
pub(crate) fn to_sse(events: &[OutEvent]) -> String {
    events.iter().map(OutEvent::to_sse).collect()
}

/// Event names (or `data`) with their `type` for compact golden comparisons.
pub(crate) fn names(events: &[OutEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match &e.event {
            Some(n) => n.clone(),
            None => "data".to_string(),
        })
        .collect()
}

/// Parsed JSON payloads (`[DONE]` as a string).
pub(crate) fn payloads(events: &[OutEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap_or(serde_json::Value::String(e.data.clone())))
        .collect()
}

/// xorshift64* PRNG.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Checks that splitting `sse` at every byte boundary (two chunks) and into random chunk
/// sizes gives the same output as one chunk.
pub(crate) fn assert_split_invariant<C: StreamConverter, F: Fn() -> C>(make: F, sse: &str) {
    let whole = run(make(), sse);
    for cut in 1..sse.len() {
        let bytes = sse.as_bytes();
        let mut parser = SseParser::new();
        let mut evs = parser.push(&bytes[..cut]).expect("parse");
        evs.extend(parser.push(&bytes[cut..]).expect("parse"));
        if let Some(e) = parser.finish().expect("finish") {
            evs.push(e);
        }
        let mut conv = make();
        let mut out = Vec::new();
        for e in &evs {
            out.extend(conv.push(e).expect("push"));
        }
        out.extend(conv.finish());
        assert_eq!(out, whole, "split at byte {cut}");
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..50 {
        let cuts: Vec<usize> = (0..16).map(|_| 1 + rng.below(24) as usize).collect();
        assert_eq!(run_split(make(), sse, &cuts), whole, "cuts {cuts:?}");
    }
    assert_eq!(run_split(make(), sse, &[1]), whole, "1-byte chunks");
}

/// Re-emits every non-empty event unchanged (the "no conversion" baseline).
pub(crate) struct PassThrough;

impl StreamConverter for PassThrough {
    fn push(
        &mut self,
        event: &crate::domain::sse::SseEvent,
    ) -> Result<Vec<OutEvent>, crate::domain::convert::ConvertError> {
        Ok(vec![OutEvent {
            event: event.event.clone(),
            data: event.data.clone(),
        }])
    }
    fn finish(&mut self) -> Vec<OutEvent> {
        Vec::new()
    }
    fn error(&mut self, _message: &str) -> Vec<OutEvent> {
        Vec::new()
    }
}
