//! Incremental Server-Sent-Events parser (the WHATWG event-stream rules).
//!
//! Upstream streams arrive in arbitrary chunks; usage extraction and stream conversion need whole
//! events. The parser is fed bytes as they come and never buffers more than one event, capped in
//! size so a broken or hostile upstream cannot grow memory without bound.

use serde::{Deserialize, Serialize};

/// Default cap of one event (field lines plus accumulated data): 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SseEvent {
    /// The `event:` name; `None` means the default type (`message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` set by this event, if any.
    pub id: Option<String>,
    /// The `retry:` reconnection time in ms set by this event, if any.
    pub retry: Option<u64>,
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the cap without being terminated by a blank line.
    #[error("server-sent event larger than {limit} bytes")]
    EventTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
}

/// Feeds on byte chunks, yields complete events.
#[derive(Debug, Clone)]
pub struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    first_line: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    max_event_bytes: usize,
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default 16 MiB event cap.
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser with a custom event cap (bytes of field lines plus accumulated data).
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            max_event_bytes,
            failed: None,
        }
    }

    /// Consumes a chunk and returns the events it completed. After an error the parser stays
    /// failed and returns the same error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        let mut i = 0;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk.first() == Some(&b'\n') {
                i = 1;
            }
        }
        while i < chunk.len() {
            let rest = chunk.get(i..).unwrap_or_default();
            match rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.line.extend_from_slice(rest);
                    self.check_size()?;
                    break;
                }
                Some(pos) => {
                    self.line
                        .extend_from_slice(rest.get(..pos).unwrap_or_default());
                    self.check_size()?;
                    self.end_line(&mut out)?;
                    let term = rest.get(pos).copied();
                    i += pos + 1;
                    if term == Some(b'\r') {
                        match chunk.get(i) {
                            Some(b'\n') => i += 1,
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ends the stream: a last line without terminator is processed, and an event that was not
    /// closed by a blank line is still dispatched if it has data (lenient towards upstreams that
    /// end without the final blank line).
    pub fn finish(&mut self) -> Result<Option<SseEvent>, SseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out)?;
        }
        self.after_cr = false;
        let pending = self.dispatch();
        Ok(out.into_iter().next().or(pending))
    }

    fn check_size(&mut self) -> Result<(), SseError> {
        if self.line.len().saturating_add(self.data.len()) > self.max_event_bytes {
            let e = SseError::EventTooLarge {
                limit: self.max_event_bytes,
            };
            self.failed = Some(e.clone());
            self.line = Vec::new();
            self.data = String::new();
            return Err(e);
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = std::mem::take(&mut self.line);
        if self.first_line {
            self.first_line = false;
            if line.starts_with(BOM) {
                line.drain(..BOM.len());
            }
        }
        if line.is_empty() {
            if let Some(ev) = self.dispatch() {
                out.push(ev);
            }
        } else {
            self.field(&line);
            self.check_size()?;
        }
        self.line = line;
        self.line.clear();
        Ok(())
    }

    fn field(&mut self, line: &[u8]) {
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(p) => {
                let v = line.get(p + 1..).unwrap_or_default();
                (
                    line.get(..p).unwrap_or_default(),
                    v.strip_prefix(b" ").unwrap_or(v),
                )
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                self.data.push_str(&value);
            }
            b"event" => self.event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take().filter(|e| !e.is_empty());
        let id = self.id.take();
        let retry = self.retry.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
            retry,
        })
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
