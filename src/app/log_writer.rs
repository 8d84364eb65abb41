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
/// Spooled rows read at once during a replay (a few MB at most: a long outage's spool is
/// never read whole).
const REPLAY_CHUNK: usize = 2_048;
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

/// Rows that found the queue full, waiting for the one spill task to append them to the spool
/// in a single write. Bounded: beyond this many waiting rows (the spool is failing as well),
/// rows are dropped, counted and reported. Before, every such row spawned its own task that
/// opened, wrote and synced the spool file in turn: when the database fell behind the traffic,
/// those tasks piled up without bound (RSS grew by about 2 KB per request, 400 MB in a minute
/// of closed-loop load).
const OVERFLOW_MAX: usize = 16_384;

/// The queue's overflow (see [`OVERFLOW_MAX`]).
struct Overflow {
    rows: std::sync::Mutex<Vec<RequestLog>>,
    wake: tokio::sync::Notify,
    dropped: AtomicU64,
}

impl Overflow {
    /// Takes a row that found the queue full; false when the overflow is full too.
    fn push(&self, row: RequestLog) -> bool {
        let mut rows = self.lock();
        if rows.len() >= OVERFLOW_MAX {
            return false;
        }
        rows.push(row);
        true
    }

    fn take(&self) -> Vec<RequestLog> {
        std::mem::take(&mut *self.lock())
    }

    /// The waiting rows; a panic elsewhere while holding the lock leaves them usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RequestLog>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends everything waiting to the spool in one write.
    async fn spill(&self, spool: &dyn LogSpool) {
        let rows = self.take();
        if rows.is_empty() {
            return;
        }
        if let Err(e) = spool.append(&rows).await {
            self.dropped.fetch_add(rows.len() as u64, Ordering::Relaxed);
            tracing::error!(error = %e, rows = rows.len(), "request log rows lost: the queue was full and the spool refused them");
        }
    }
}

/// The spill task: appends the overflow to the spool whenever rows arrive in it, until stopped.
async fn spill_loop(
    overflow: Arc<Overflow>,
    spool: Arc<dyn LogSpool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = overflow.wake.notified() => overflow.spill(spool.as_ref()).await,
            _ = stop.changed() => break,
        }
    }
    overflow.spill(spool.as_ref()).await;
}

/// Handle used by the proxy to submit rows.
pub struct LogWriter {
    tx: mpsc::Sender<RequestLog>,
    spool: Arc<dyn LogSpool>,
    overflow: Arc<Overflow>,
    db_down: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    spiller: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
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
        let overflow = Arc::new(Overflow {
            rows: std::sync::Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
        });
        let spiller = tokio::spawn(spill_loop(overflow.clone(), spool.clone(), stop_rx.clone()));
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
            overflow,
            spiller: tokio::sync::Mutex::new(Some(spiller)),
            db_down,
            written,
            task: tokio::sync::Mutex::new(Some(task)),
            stop,
        })
    }

    /// Queues a row; never blocks. A full queue spills to the spool (through the bounded
    /// overflow, written in batches by one task); a row is lost only when the spool fails too
    /// and the overflow is full, and then it is counted ([`Self::dropped`]) and reported.
    pub fn submit(&self, row: RequestLog) {
        if let Err(e) = self.tx.try_send(row) {
            let row = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            if self.overflow.push(row) {
                self.overflow.wake.notify_one();
            } else if self
                .overflow
                .dropped
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1024)
            {
                tracing::error!(
                    "request log rows dropped: the queue and its overflow are full and the spool is not keeping up"
                );
            }
        }
    }

    /// Rows lost because the queue, its overflow and the spool could not take them.
    pub fn dropped(&self) -> u64 {
        self.overflow.dropped.load(Ordering::Relaxed)
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
        if let Some(t) = self.spiller.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        // Rows submitted after the tasks stopped (the queue is closed) go to the spool too.
        self.overflow.spill(self.spool.as_ref()).await;
    }
}

/// Whether the writer keeps up with the traffic, which tells the store how urgent a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// The batch was not full: nothing waits behind it
    /// ([`RequestLogStore::insert_logs_unhurried`]).
    Unhurried,
    /// A full batch, a retry or the shutdown flush: more rows wait.
    Behind,
}

async fn store_batch(
    store: &dyn RequestLogStore,
    spool: &dyn LogSpool,
    batch: &[RequestLog],
    pace: Pace,
    db_down: &AtomicBool,
    written: &AtomicU64,
    held: &mut Vec<RequestLog>,
) {
    if batch.is_empty() {
        return;
    }
    let inserted = match pace {
        Pace::Unhurried => store.insert_logs_unhurried(batch).await,
        Pace::Behind => store.insert_logs(batch).await,
    };
    match inserted {
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
        store_batch(store, spool, chunk, Pace::Behind, db_down, written, held).await;
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
    let (mut cursor, mut replayed) = (0u64, 0usize);
    loop {
        let (rows, next) = match spool.pending_chunk(cursor, REPLAY_CHUNK).await {
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
                    // Keep the replay file; inserts are idempotent, so the next replay may
                    // start again from its beginning.
                    return;
                }
            }
        }
        replayed += rows.len();
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    if let Err(e) = spool.commit_replay().await {
        tracing::error!(error = %e, "cannot clear the replayed spool");
    } else {
        db_down.store(false, Ordering::Relaxed);
        tracing::info!(rows = replayed, "replayed spooled request log rows");
    }
}

/// Adds rows to `batch`: what is queued now, and when that is less than `BATCH` rows, what
/// arrived after one `LINGER` pause. Sleeping out the linger once, instead of waking up for
/// every row as it arrives, spares the runtime a task wake-up per request (at 1,000 requests/s,
/// 1,000 wake-ups a second became 10). False when the queue is closed (every sender is gone).
async fn fill_batch(rx: &mut mpsc::Receiver<RequestLog>, batch: &mut Vec<RequestLog>) -> bool {
    if !drain(rx, batch) {
        return false;
    }
    if batch.len() >= BATCH {
        return true;
    }
    tokio::time::sleep(LINGER).await;
    drain(rx, batch)
}

/// Moves queued rows into `batch` without waiting, up to `BATCH`; false when the queue is
/// closed and empty.
fn drain(rx: &mut mpsc::Receiver<RequestLog>, batch: &mut Vec<RequestLog>) -> bool {
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(row) => batch.push(row),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
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
                // A batch the linger did not fill means the writer keeps up with the traffic.
                let pace = if batch.len() < BATCH { Pace::Unhurried } else { Pace::Behind };
                store_batch(store.as_ref(), spool.as_ref(), &batch, pace, &db_down, &written, &mut held).await;
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
                        store_batch(store.as_ref(), spool.as_ref(), &batch, Pace::Behind, &db_down, &written, &mut held).await;
                        batch.clear();
                    }
                }
                store_batch(store.as_ref(), spool.as_ref(), &batch, Pace::Behind, &db_down, &written, &mut held).await;
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

    /// Remembers the size and the pace of every insert.
    #[derive(Default)]
    struct CountingStore(Mutex<Vec<(usize, Pace)>>);

    #[async_trait]
    impl RequestLogStore for CountingStore {
        async fn insert_logs(&self, rows: &[RequestLog]) -> StoreResult<u64> {
            self.0.lock().unwrap().push((rows.len(), Pace::Behind));
            Ok(rows.len() as u64)
        }
        async fn insert_logs_unhurried(&self, rows: &[RequestLog]) -> StoreResult<u64> {
            self.0.lock().unwrap().push((rows.len(), Pace::Unhurried));
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
        async fn pending_chunk(
            &self,
            _: u64,
            _: usize,
        ) -> std::io::Result<(Vec<RequestLog>, Option<u64>)> {
            Ok((Vec::new(), None))
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
        store.0.lock().unwrap().iter().map(|&(n, _)| n).collect()
    }

    fn paces(store: &CountingStore) -> Vec<Pace> {
        store.0.lock().unwrap().iter().map(|&(_, p)| p).collect()
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
        // Batches the linger did not fill are in no hurry: the store may run them at a low
        // CPU priority.
        assert!(
            paces(&store).iter().all(|&p| p == Pace::Unhurried),
            "{:?}",
            paces(&store)
        );
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
        // A full batch means rows wait behind it: written at normal priority.
        assert_eq!(paces(&store).first(), Some(&Pace::Behind));
    }

    /// A database that takes no row until released.
    struct StuckStore(tokio::sync::Semaphore);

    #[async_trait]
    impl RequestLogStore for StuckStore {
        async fn insert_logs(&self, rows: &[RequestLog]) -> StoreResult<u64> {
            let _p = self.0.acquire().await;
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

    /// Records each append's size; fails every append when `broken`.
    #[derive(Default)]
    struct RecordingSpool {
        appends: Mutex<Vec<usize>>,
        broken: bool,
    }

    #[async_trait]
    impl LogSpool for RecordingSpool {
        async fn append(&self, rows: &[RequestLog]) -> std::io::Result<()> {
            if self.broken {
                return Err(std::io::Error::other("disk full"));
            }
            self.appends.lock().unwrap().push(rows.len());
            Ok(())
        }
        async fn pending_chunk(
            &self,
            _: u64,
            _: usize,
        ) -> std::io::Result<(Vec<RequestLog>, Option<u64>)> {
            Ok((Vec::new(), None))
        }
        async fn commit_replay(&self) -> std::io::Result<()> {
            Ok(())
        }
        async fn is_empty(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn a_full_queue_spills_in_batches_not_one_task_per_row() {
        let store = Arc::new(StuckStore(tokio::sync::Semaphore::new(0)));
        let spool = Arc::new(RecordingSpool::default());
        let w = LogWriter::start(store.clone(), spool.clone(), Duration::from_secs(3600));
        // Submitted without yielding: the queue fills, the rest overflows (the writer, stuck
        // on its insert later, takes none of them before).
        let extra = 5_000;
        for n in 0..(QUEUE + extra) {
            w.submit(row(n));
        }
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if spool.appends.lock().unwrap().iter().sum::<usize>() >= extra {
                break;
            }
        }
        let appends = spool.appends.lock().unwrap().clone();
        assert_eq!(appends.iter().sum::<usize>(), extra, "{appends:?}");
        assert!(
            appends.len() <= 10,
            "one spool write per row again: {} writes",
            appends.len()
        );
        assert_eq!(w.dropped(), 0);
        store.0.add_permits(1_000_000);
        w.shutdown().await;
        assert_eq!(w.written() as usize, QUEUE);
    }

    #[tokio::test]
    async fn the_overflow_is_bounded_when_the_spool_fails_too() {
        let store = Arc::new(StuckStore(tokio::sync::Semaphore::new(0)));
        let spool = Arc::new(RecordingSpool {
            broken: true,
            ..Default::default()
        });
        let w = LogWriter::start(store.clone(), spool, Duration::from_secs(3600));
        let extra = OVERFLOW_MAX + 1_000;
        // Submitted in one go (no await): the spill task cannot run in between, so the
        // overflow fills to its bound and the rest is counted as dropped.
        for n in 0..(QUEUE + extra) {
            w.submit(row(n));
        }
        assert_eq!(w.dropped(), 1_000);
        assert!(w.overflow.rows.lock().unwrap().len() <= OVERFLOW_MAX);
        store.0.add_permits(1_000_000);
        w.shutdown().await;
    }
}
