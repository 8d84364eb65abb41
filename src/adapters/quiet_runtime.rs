//! A Tokio runtime on a thread of its own at a low CPU priority, for a store's background
//! work whose client side would otherwise run on the request threads.
//!
//! PostgreSQL executes a log batch in its own server, but composing it does not: binding 24
//! values per row, encoding them, the roll-up arithmetic and reading the replies ran inside
//! cch, on whichever request thread polled the log writer, where a request that woke meanwhile
//! waited for it. On this thread, at [`crate::adapters::thread_priority::LOG_WRITER_NICE`], that
//! work takes a core only when no request thread wants it (the embedded SQLite store does the
//! same with its log connection's worker thread).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::ports::store::{StoreError, StoreResult};

/// Runs futures on one named, low-priority thread. Cheap to clone; the thread and its runtime
/// stop when the last clone is dropped, and work still pending on it is dropped with them.
#[derive(Clone)]
pub struct QuietRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    handle: tokio::runtime::Handle,
    /// Dropped with the last clone, which ends the thread's `block_on`.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for QuietRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuietRuntime").finish_non_exhaustive()
    }
}

impl QuietRuntime {
    /// Starts thread `name` (at most 15 bytes, the kernel's limit for a thread name) at CPU
    /// priority `nice`, running a current-thread runtime; returns once the runtime runs. The
    /// caller's thread is never blocked: it awaits the new thread's word.
    pub async fn start(name: &str, nice: i32) -> std::io::Result<Self> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                crate::adapters::thread_priority::lower_this_thread(nice);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
            })?;
        let handle = ready_rx
            .await
            .map_err(|_| std::io::Error::other("the thread ended before its runtime ran"))??;
        Ok(Self {
            inner: Arc::new(Inner {
                handle,
                _stop: stop_tx,
            }),
        })
    }

    /// Runs `work` on the thread and waits for its output; an error only when the runtime has
    /// gone or the work panicked.
    pub async fn run<F, T>(&self, work: F) -> Result<T, tokio::task::JoinError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.handle.spawn(work).await
    }
}

/// A [`QuietRuntime`] and a value made on it (a connection pool whose connections then belong
/// to that thread), started on first use and shared by a store's clones.
#[derive(Debug)]
pub struct QuietLane<T> {
    name: &'static str,
    nice: i32,
    /// Filled on first use; `None` inside when the thread could not start.
    cell: Arc<tokio::sync::OnceCell<Option<(QuietRuntime, T)>>>,
}

impl<T> Clone for QuietLane<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            nice: self.nice,
            cell: self.cell.clone(),
        }
    }
}

impl<T: Send + 'static> QuietLane<T> {
    /// A lane whose thread, named `name`, runs at CPU priority `nice` once started.
    pub fn new(name: &'static str, nice: i32) -> Self {
        Self {
            name,
            nice,
            cell: Arc::default(),
        }
    }

    /// The lane's runtime and value, starting the thread and calling `make` on it the first
    /// time; `None` (warned once per lane) when the thread cannot start, and the caller does
    /// the work itself.
    async fn get<F>(&self, make: F) -> Option<(&QuietRuntime, &T)>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.cell
            .get_or_init(|| async {
                let runtime = match QuietRuntime::start(self.name, self.nice).await {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::warn!(error = %e, thread = self.name, "no low-priority thread; its work runs with the requests");
                        return None;
                    }
                };
                let value = runtime.run(async move { make() }).await.ok()?;
                Some((runtime, value))
            })
            .await
            .as_ref()
            .map(|(rt, v)| (rt, v))
    }

    /// Runs a store call on the lane: `work` gets the lane's value (made by `make` the first
    /// time) and returns the future to run there. `None` when the thread cannot start, and the
    /// caller runs the call itself; a lane that failed under the call (its thread gone, the
    /// work panicked) is the store being unavailable, so the caller's usual error path (the
    /// log writer's spool) takes over.
    pub async fn run<M, W, Fut, R>(&self, make: M, work: W) -> Option<StoreResult<R>>
    where
        M: FnOnce() -> T + Send + 'static,
        W: FnOnce(&T) -> Fut,
        Fut: Future<Output = StoreResult<R>> + Send + 'static,
        R: Send + 'static,
    {
        let (runtime, value) = self.get(make).await?;
        Some(runtime.run(work(value)).await.unwrap_or_else(|e| {
            Err(StoreError::Unavailable(format!(
                "thread {} failed: {e}",
                self.name
            )))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_named_thread_and_the_thread_ends_with_the_last_clone() {
        let quiet = QuietRuntime::start("cch-quiet-test", 5).await.unwrap();
        let name = quiet
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("cch-quiet-test"));
        #[cfg(target_os = "linux")]
        assert_eq!(
            crate::adapters::thread_priority::nice_of_threads_named("cch-quiet-test"),
            vec![5]
        );
        let clone = quiet.clone();
        drop(quiet);
        assert_eq!(clone.run(async { 41 + 1 }).await.unwrap(), 42);
        drop(clone);
        let mut gone = false;
        for _ in 0..200 {
            if crate::adapters::thread_priority::nice_of_threads_named("cch-quiet-test").is_empty()
            {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        #[cfg(target_os = "linux")]
        assert!(gone, "the thread ends with the last clone");
        let _ = gone;
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_for_its_caller_only() {
        let quiet = QuietRuntime::start("cch-quiet-pan", 5).await.unwrap();
        let failed = quiet.run(async { panic!("work failed") }).await;
        assert!(failed.is_err());
        assert_eq!(
            quiet.run(async { 7 }).await.unwrap(),
            7,
            "the thread still runs"
        );
    }
}
