//! The batched, asynchronous request-log writer. Rows go into a bounded queue; a background
//! task inserts them in batches. When the database fails, batches go to the local spool and are
//! replayed (idempotently, by request id) once it answers again, across restarts too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::domain::request_log::RequestLog;
use crate::ports::spool::LogSpool;
use crate::ports::store::RequestLogStore;

/// Rows per insert.
const BATCH: usize = 256;
/// How long a batch waits for more rows after its first one. Without it a busy gateway wrote
/// a transaction every few rows: at 1,000 requests/s the SQLite writer took about half of
/// cch's CPU and its WAL checkpoints competed with the runtime for the two cores. With it, at
/// most one insert per `LINGER` (or per `BATCH` rows) reaches the database; a row waits at
/// most this long before it is stored.
const LINGER: Duration = Duration::from_millis(100);
/// Queue capacity before rows spill straight to the spool.
const QUEUE: usize = 16_384;
/// Rows kept in memory while neither the database nor the spool can take them (a full disk
/// holds both); retried on every replay tick. Beyond this bound rows are dropped, loudly.
/// A row is 1–4 KB (its provider chain dominates), so this holds at most tens of MB: about
/// 16 s of traffic at 1,000 requests/s, enough for a short disk fault.
const HELD_MAX: usize = 16_384;

/// Handle used by the proxy to submit rows.
pub struct LogWriter {
    tx: mpsc::Sender<RequestLog>,
    spool: Arc<dyn LogSpool>,
    db_down: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl LogWriter {
    /// Starts the background writer; `replay_every` is how often the spool is retried.
    pub fn start(
        store: Arc<dyn RequestLogStore>,
        spool: Arc<dyn LogSpool>,
        replay_every: Duration,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let db_down = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(
            rx,
            stop_rx,
            store,
            spool.clone(),
            replay_every,
            db_down.clone(),
            written.clone(),
        ));
        Arc::new(Self {
            tx,
            spool,
            db_down,
            written,
            task: tokio::sync::Mutex::new(Some(task)),
            stop,
        })
    }

    /// Queues a row; never blocks and never drops it (a full queue spills to the spool).
    pub fn submit(&self, row: RequestLog) {
        if let Err(e) = self.tx.try_send(row) {
            let row = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            let spool = self.spool.clone();
            tokio::spawn(async move {
                if let Err(e) = spool.append(std::slice::from_ref(&row)).await {
                    tracing::error!(error = %e, request_id = %row.request_id, "cannot spool a request log row");
                }
            });
        }
    }

    /// Whether the last insert failed (rows are being spooled).
    pub fn database_down(&self) -> bool {
        self.db_down.load(Ordering::Relaxed)
    }

    /// Whether rows wait in the spool for the database (written while inserts failed).
    pub async fn has_spooled_rows(&self) -> bool {
        !self.spool.is_empty().await
    }

    /// Rows stored in the database so far by this writer.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Flushes the queue (to the database, or the spool) and stops the task.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

async fn store_batch(
    store: &dyn RequestLogStore,
    spool: &dyn LogSpool,
    batch: &[RequestLog],
    db_down: &AtomicBool,
    written: &AtomicU64,
    held: &mut Vec<RequestLog>,
) {
    if batch.is_empty() {
        return;
    }
    match store.insert_logs(batch).await {
        Ok(n) => {
            written.fetch_add(n, Ordering::Relaxed);
            if db_down.swap(false, Ordering::Relaxed) {
                tracing::info!("request log database is back");
            }
        }
        Err(e) => {
            if !db_down.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "request log database unavailable; spooling rows to disk");
            }
            if let Err(e) = spool.append(batch).await {
                hold(held, batch, &e);
            }
        }
    }
}

/// Keeps rows that neither the database nor the spool took, up to `HELD_MAX`.
fn hold(held: &mut Vec<RequestLog>, batch: &[RequestLog], error: &std::io::Error) {
    let room = HELD_MAX.saturating_sub(held.len());
    let kept = batch.len().min(room);
    held.extend_from_slice(&batch[..kept]);
    if kept < batch.len() {
        tracing::error!(error = %error, dropped = batch.len() - kept, "request log rows dropped: database, spool and memory buffer are all full");
    } else {
        tracing::warn!(error = %error, rows = kept, held = held.len(), "cannot spool request log rows; keeping them in memory");
    }
}

/// Retries the rows held in memory: the database first, else the spool.
async fn retry_held(
    store: &dyn RequestLogStore,
    spool: &dyn LogSpool,
    db_down: &AtomicBool,
    written: &AtomicU64,
    held: &mut Vec<RequestLog>,
) {
    if held.is_empty() {
        return;
    }
    let rows = std::mem::take(held);
    for chunk in rows.chunks(BATCH) {
        store_batch(store, spool, chunk, db_down, written, held).await;
    }
}

async fn replay(
    store: &dyn RequestLogStore,
    spool: &dyn LogSpool,
    db_down: &AtomicBool,
    written: &AtomicU64,
) {
    if spool.is_empty().await {
        return;
    }
    let rows = match spool.pending().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the request log spool");
            return;
        }
    };
    for chunk in rows.chunks(BATCH) {
        match store.insert_logs(chunk).await {
            Ok(n) => {
                written.fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => {
                db_down.store(true, Ordering::Relaxed);
                return; // keep the replay file; inserts are idempotent, so retrying is safe
            }
        }
    }
    if let Err(e) = spool.commit_replay().await {
        tracing::error!(error = %e, "cannot clear the replayed spool");
    } else {
        db_down.store(false, Ordering::Relaxed);
        tracing::info!(rows = rows.len(), "replayed spooled request log rows");
    }
}

/// Adds rows to `batch` until it holds `BATCH` rows or `LINGER` has passed; false when the
/// queue is closed (every sender is gone).
async fn fill_batch(rx: &mut mpsc::Receiver<RequestLog>, batch: &mut Vec<RequestLog>) -> bool {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < BATCH {
        let room = BATCH - batch.len();
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, room)).await {
            Ok(0) => return false,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    true
}

async fn run(
    mut rx: mpsc::Receiver<RequestLog>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    store: Arc<dyn RequestLogStore>,
    spool: Arc<dyn LogSpool>,
    replay_every: Duration,
    db_down: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) {
    replay(store.as_ref(), spool.as_ref(), &db_down, &written).await;
    let mut tick = tokio::time::interval(replay_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<RequestLog> = Vec::with_capacity(BATCH);
    // Bounded by HELD_MAX.
    let mut held: Vec<RequestLog> = Vec::new();
    loop {
        tokio::select! {
            row = rx.recv() => {
                let Some(row) = row else { break };
                batch.push(row);
                let open = fill_batch(&mut rx, &mut batch).await;
                store_batch(store.as_ref(), spool.as_ref(), &batch, &db_down, &written, &mut held).await;
                batch.clear();
                if !open {
                    break;
                }
            }
            _ = tick.tick() => {
                retry_held(store.as_ref(), spool.as_ref(), &db_down, &written, &mut held).await;
                replay(store.as_ref(), spool.as_ref(), &db_down, &written).await;
            }
            _ = stop.changed() => {
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                    if batch.len() == BATCH {
                        store_batch(store.as_ref(), spool.as_ref(), &batch, &db_down, &written, &mut held).await;
                        batch.clear();
                    }
                }
                store_batch(store.as_ref(), spool.as_ref(), &batch, &db_down, &written, &mut held).await;
                retry_held(store.as_ref(), spool.as_ref(), &db_down, &written, &mut held).await;
                if !held.is_empty() {
                    tracing::error!(rows = held.len(), "request log rows lost at shutdown: neither the database nor the spool could take them");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::request_log::LogFilter;
    use crate::ports::store::{CostBucket, CostQuery, StoreError, StoreResult};

    /// Remembers the size of every insert.
    #[derive(Default)]
    struct CountingStore(Mutex<Vec<usize>>);

    #[async_trait]
    impl RequestLogStore for CountingStore {
        async fn insert_logs(&self, rows: &[RequestLog]) -> StoreResult<u64> {
            self.0.lock().unwrap().push(rows.len());
            Ok(rows.len() as u64)
        }
        async fn list_logs(&self, _: &LogFilter) -> StoreResult<Vec<RequestLog>> {
            Ok(Vec::new())
        }
        async fn get_log(&self, _: i64) -> StoreResult<RequestLog> {
            Err(StoreError::NotFound)
        }
        async fn cost_buckets(&self, _: &CostQuery) -> StoreResult<Vec<CostBucket>> {
            Ok(Vec::new())
        }
    }

    struct NoSpool;

    #[async_trait]
    impl LogSpool for NoSpool {
        async fn append(&self, _: &[RequestLog]) -> std::io::Result<()> {
            Ok(())
        }
        async fn pending(&self) -> std::io::Result<Vec<RequestLog>> {
            Ok(Vec::new())
        }
        async fn commit_replay(&self) -> std::io::Result<()> {
            Ok(())
        }
        async fn is_empty(&self) -> bool {
            true
        }
    }

    fn row(n: usize) -> RequestLog {
        RequestLog {
            id: 0,
            request_id: format!("r{n}"),
            created_at: chrono::Utc::now(),
            user_id: None,
            key_id: None,
            provider_id: None,
            requested_model: None,
            forwarded_model: None,
            endpoint: "/v1/messages".into(),
            client_format: "claude".into(),
            status_code: 200,
            is_stream: false,
            input_tokens: 0,
            output_tokens: 0,
            cache_creation_5m_tokens: 0,
            cache_creation_1h_tokens: 0,
            cache_read_tokens: 0,
            cost_usd: rust_decimal::Decimal::ZERO,
            cost_known: true,
            duration_ms: 0,
            ttfb_ms: None,
            provider_chain: serde_json::Value::Null,
            session_id: None,
            user_agent: None,
            error_message: None,
        }
    }

    fn inserts(store: &CountingStore) -> Vec<usize> {
        store.0.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn rows_arriving_within_the_linger_share_one_insert() {
        let store = Arc::new(CountingStore::default());
        let w = LogWriter::start(store.clone(), Arc::new(NoSpool), Duration::from_secs(3600));
        // Twenty rows, 2 ms apart: before batches waited, nearly each was its own transaction.
        for n in 0..20 {
            w.submit(row(n));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(LINGER * 3).await;
        let sizes = inserts(&store);
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.len() <= 3, "rows were not batched: {sizes:?}");
        // A lone row is still stored, once the linger has passed.
        w.submit(row(20));
        tokio::time::sleep(LINGER * 3).await;
        assert_eq!(inserts(&store).last(), Some(&1));
        assert_eq!(w.written(), 21);
    }

    #[tokio::test]
    async fn a_full_batch_is_written_without_waiting_and_shutdown_flushes() {
        let store = Arc::new(CountingStore::default());
        let w = LogWriter::start(store.clone(), Arc::new(NoSpool), Duration::from_secs(3600));
        for n in 0..(BATCH + 3) {
            w.submit(row(n));
        }
        tokio::time::sleep(LINGER / 4).await;
        assert_eq!(inserts(&store).first(), Some(&BATCH));
        w.shutdown().await;
        assert_eq!(w.written(), (BATCH + 3) as u64);
    }
}
