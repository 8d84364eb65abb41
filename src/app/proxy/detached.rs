//! Work a request leaves behind after its answer (the spend record, the session's binding, a
//! breaker's success): run at once when it finishes without waiting, spawned otherwise.
//!
//! With the in-process stores every such future completes on its first poll. Spawning it
//! anyway made the runtime wake its other worker thread for a task of a few microseconds, at
//! every request. With Redis the first poll queues the commands for the shared write batch
//! and the rest (waiting for Redis's reply) runs as a task, as before.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll, Waker};

/// Polls `work` once on the calling thread; when it is not done, hands it to the runtime of
/// `handle` to finish. A future polled again with another waker must (as every future must)
/// register the new one, so the spawned task is woken as usual.
pub fn run_or_spawn<F>(handle: &tokio::runtime::Handle, work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut work = Box::pin(work);
    let mut cx = Context::from_waker(Waker::noop());
    // A panic here must not fail the request whose answer is already decided (a spawned task's
    // panic never could): it is reported by the panic hook and the work is dropped.
    match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            handle.spawn(work);
        }
        Err(_) => tracing::error!("work left after an answer panicked; dropped"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn work_done_on_its_first_poll_runs_before_the_call_returns() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        run_or_spawn(&tokio::runtime::Handle::current(), async move {
            flag.store(true, Ordering::SeqCst);
        });
        // No await in between: a spawned task could not have run yet on this
        // single-threaded test runtime.
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panic_in_the_work_does_not_reach_the_caller() {
        run_or_spawn(&tokio::runtime::Handle::current(), async {
            panic!("left-over work failed");
        });
    }

    #[tokio::test]
    async fn work_that_waits_is_finished_by_the_runtime() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let (out_tx, out_rx) = tokio::sync::oneshot::channel::<u32>();
        run_or_spawn(&tokio::runtime::Handle::current(), async move {
            if let Ok(v) = rx.await {
                let _ = out_tx.send(v + 1);
            }
        });
        // The first poll found nothing to receive; the spawned task gets the value later.
        tx.send(41).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), out_rx).await;
        assert_eq!(got.ok().and_then(Result::ok), Some(42));
    }
}
