//! Where the process is in its shutdown, for the parts that answer clients while it happens:
//! `/ready` turns 503 as soon as the first signal arrives (`draining`), and a request still
//! waiting for its upstream when the drain time ends is answered 503 in the client's format
//! (`cut`), the same moment open streams get their closing error event.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Shutdown progress shared by the wiring (which advances it) and the HTTP front (which reads
/// it). Two flags, no queue: nothing here grows.
#[derive(Debug)]
pub struct ShutdownState {
    draining: AtomicBool,
    cut: watch::Receiver<bool>,
}

impl ShutdownState {
    /// A state that follows `cut` (the trigger the server fires when the drain time is over).
    pub fn new(cut: watch::Receiver<bool>) -> Self {
        Self {
            draining: AtomicBool::new(false),
            cut,
        }
    }

    /// Marks the process as draining: `/ready` answers 503 from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// True once the first shutdown signal has arrived.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Completes when the drain time is over and open requests must end now. Never completes
    /// if the trigger is dropped without firing.
    pub async fn cut_fired(&self) {
        let mut rx = self.cut.clone();
        if rx.wait_for(|cut| *cut).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn draining_is_visible_and_the_cut_follows_its_trigger() {
        let (tx, rx) = watch::channel(false);
        let state = ShutdownState::new(rx);
        assert!(!state.is_draining());
        state.begin_drain();
        assert!(state.is_draining());
        let early = tokio::time::timeout(Duration::from_millis(20), state.cut_fired()).await;
        assert!(early.is_err(), "no cut before the trigger");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), state.cut_fired())
            .await
            .expect("the cut fires once triggered");
    }

    #[tokio::test]
    async fn a_dropped_trigger_never_cuts() {
        let (tx, rx) = watch::channel(false);
        let state = ShutdownState::new(rx);
        drop(tx);
        let r = tokio::time::timeout(Duration::from_millis(20), state.cut_fired()).await;
        assert!(r.is_err());
    }
}
