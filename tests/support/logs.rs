//! Captures `tracing` events so a test can assert what was logged (e.g. one warning per
//! outage). Install with `capture()` on a current-thread runtime: the guard is per thread.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Events seen so far: (level, message).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

impl Captured {
    /// Messages logged at `level` containing `needle`.
    pub fn count(&self, level: Level, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, m)| *l == level && m.contains(needle))
            .count()
    }

    /// Messages logged at `level`.
    pub fn at(&self, level: Level) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

struct CaptureLayer(Captured);

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let level = *event.metadata().level();
        self.0.0.lock().unwrap().push((level, visitor.0));
    }
}

/// Starts capturing on this thread until the guard is dropped.
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(CaptureLayer(captured.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}
