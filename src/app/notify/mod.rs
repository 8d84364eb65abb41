//! Notification delivery: events become platform-neutral notices, go through a durable outbox
//! in the database (one row per target, repeats merged), and a background worker delivers them
//! with retries and backoff. The proxy only hands a notice to a bounded in-memory queue
//! ([`NotificationService::publish`]); everything slow happens in background tasks.

pub mod config;
pub mod cost_alerts;
pub mod leaderboard;
pub mod notifier;
pub mod sender;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::future::join_all;
use tokio::sync::{Mutex, mpsc};

use crate::domain::notify::backoff::next_attempt;
use crate::domain::notify::platform::{Verdict, render};
use crate::domain::notify::target::Target;
use crate::domain::notify::{EventKind, Notice, events};
use crate::ports::clock::Clock;
use crate::ports::notifications::{Delivery, NotificationStore, OutboxItem, Outcome};
use crate::ports::store::{StoreError, StoreResult};
use crate::ports::upstream::UpstreamClient;

use self::config::NotifySettings;
use self::sender::{AttemptResult, cut, send};

/// Notices waiting to be written to the outbox (bound: 1,024; beyond that new notices are
/// dropped and counted, so a storm can never hold the proxy up or grow memory).
const QUEUE_CAPACITY: usize = 1024;
/// Messages claimed per worker round.
const CLAIM_BATCH: u32 = 16;
/// Attempts to write a notice to the outbox while the database is down, 1 s apart.
const OUTBOX_WRITE_TRIES: u32 = 30;

/// What `POST …/targets/{id}/test` reports.
#[derive(Debug, Clone)]
pub struct TestAnswer {
    /// Whether the platform accepted the message.
    pub delivered: bool,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// The platform's answer (cut to 1 KB) or the failure.
    pub answer: String,
}

/// The notification service: outbox writer, delivery worker, test sends.
pub struct NotificationService {
    store: Arc<dyn NotificationStore>,
    upstream: Arc<dyn UpstreamClient>,
    clock: Arc<dyn Clock>,
    settings: NotifySettings,
    tz: Tz,
    tx: mpsc::Sender<Notice>,
    rx: Mutex<Option<mpsc::Receiver<Notice>>>,
    wake: tokio::sync::Notify,
    dropped: AtomicU64,
}

impl NotificationService {
    /// Builds the service; nothing runs until [`Self::spawn`].
    pub fn new(
        store: Arc<dyn NotificationStore>,
        upstream: Arc<dyn UpstreamClient>,
        clock: Arc<dyn Clock>,
        settings: NotifySettings,
        tz: Tz,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        Arc::new(Self {
            store,
            upstream,
            clock,
            settings,
            tz,
            tx,
            rx: Mutex::new(Some(rx)),
            wake: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
        })
    }

    /// The store (the admin API reads targets and the delivery log through it).
    pub fn store(&self) -> &Arc<dyn NotificationStore> {
        &self.store
    }

    /// The settings in force.
    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// Notices dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands a notice to the outbox writer without waiting (the hot path calls this).
    pub fn publish(&self, notice: Notice) {
        if self.tx.try_send(notice).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("notification queue full: a notice was dropped");
        }
    }

    /// Writes `notice` to the outbox for every enabled target that wants it; returns how many.
    pub async fn enqueue(&self, notice: &Notice) -> StoreResult<usize> {
        let targets = self.store.list_targets().await?;
        let now = self.clock.now();
        let mut n = 0;
        for t in targets
            .iter()
            .filter(|t| t.enabled && t.wants(notice.event))
        {
            self.store.enqueue(t.id, notice, now).await?;
            n += 1;
        }
        if n > 0 {
            self.wake.notify_one();
        }
        Ok(n)
    }

    /// Sends a test message to `target` now (outside the outbox) and logs the attempt.
    pub async fn send_test(&self, target: &Target) -> TestAnswer {
        let now = self.clock.now();
        let notice = events::test_message(&target.name, now);
        let result = match render(target, &notice, 1, now, self.tz) {
            Ok(call) => {
                send(
                    self.upstream.as_ref(),
                    target.kind,
                    call,
                    self.settings.proxy_url.clone(),
                    self.settings.timeout,
                    now,
                )
                .await
            }
            Err(e) => AttemptResult {
                verdict: Verdict::Failed,
                status: None,
                answer: e,
                retry_after_secs: None,
            },
        };
        let delivered = result.verdict == Verdict::Delivered;
        let log = Delivery {
            id: 0,
            at: self.clock.now(),
            target_id: target.id,
            target_name: target.name.clone(),
            event: EventKind::Test.as_str().into(),
            outbox_id: 0,
            attempt: 1,
            outcome: if delivered { "delivered" } else { "failed" }.into(),
            status: result.status,
            answer: result.answer.clone(),
            next_at: None,
        };
        if let Err(e) = self.store.log_delivery(&log).await {
            tracing::warn!(error = %e, "test delivery not logged");
        }
        TestAnswer {
            delivered,
            status: result.status,
            answer: result.answer,
        }
    }

    /// One worker round: claims due messages and delivers them; returns how many were claimed.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.settings.timeout * 2)
            .unwrap_or(chrono::Duration::seconds(20))
            + chrono::Duration::seconds(30);
        let items = self.store.claim_due(now, now + lease, CLAIM_BATCH).await?;
        let n = items.len();
        let results = join_all(items.iter().map(|i| self.deliver(i))).await;
        for r in results {
            if let Err(e) = r {
                tracing::warn!(error = %e, "notification delivery not recorded");
            }
        }
        Ok(n)
    }

    async fn deliver(&self, item: &OutboxItem) -> StoreResult<()> {
        let target = match self.store.get_target(item.target_id).await {
            Ok(t) => t,
            // Deleted meanwhile: its messages went with it.
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let now = self.clock.now();
        if item.notice.event != EventKind::Test {
            let last = self
                .store
                .last_delivered(item.target_id, &item.notice.coalesce_key)
                .await?;
            if let Some(last) = last {
                let open_until = last + self.settings.coalesce_window;
                if now < open_until {
                    return self.store.defer(item, open_until).await;
                }
            }
        }
        let result = if !target.enabled {
            AttemptResult {
                verdict: Verdict::Failed,
                status: None,
                answer: "target disabled".into(),
                retry_after_secs: None,
            }
        } else {
            match render(&target, &item.notice, item.repeats, now, self.tz) {
                Ok(call) => {
                    send(
                        self.upstream.as_ref(),
                        target.kind,
                        call,
                        self.settings.proxy_url.clone(),
                        self.settings.timeout,
                        now,
                    )
                    .await
                }
                Err(e) => AttemptResult {
                    verdict: Verdict::Failed,
                    status: None,
                    answer: e,
                    retry_after_secs: None,
                },
            }
        };
        let done_at = self.clock.now();
        let attempt = item.attempts.saturating_add(1);
        let outcome = match result.verdict {
            Verdict::Delivered => Outcome::Delivered,
            Verdict::Failed => Outcome::Failed,
            Verdict::Retry { .. } => next_attempt(attempt, done_at, result.retry_after_secs)
                .map_or(Outcome::Failed, Outcome::Retry),
        };
        match outcome {
            Outcome::Delivered => {
                tracing::info!(target_id = target.id, target = %target.name, event = item.notice.event.as_str(), attempt, "notification delivered")
            }
            _ => {
                tracing::warn!(target_id = target.id, target = %target.name, event = item.notice.event.as_str(), attempt, status = ?result.status, outcome = outcome.as_str(), "notification not delivered")
            }
        }
        let log = Delivery {
            id: 0,
            at: done_at,
            target_id: target.id,
            target_name: target.name.clone(),
            event: item.notice.event.as_str().into(),
            outbox_id: item.id,
            attempt,
            outcome: outcome.as_str().into(),
            status: result.status,
            answer: cut(&result.answer, sender::MAX_ANSWER_KEPT),
            next_at: match outcome {
                Outcome::Retry(t) => Some(t),
                _ => None,
            },
        };
        self.store.finish(item, outcome, &log).await
    }

    /// Wakes the worker now (tests that move a manual clock use it).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the outbox writer and the delivery worker; both stop when `shutdown` turns true.
    pub async fn spawn(self: &Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(rx) = self.rx.lock().await.take() {
            tokio::spawn(Arc::clone(self).outbox_writer(rx, shutdown.clone()));
        }
        tokio::spawn(Arc::clone(self).worker(shutdown));
    }

    async fn outbox_writer(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Notice>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let notice = tokio::select! {
                n = rx.recv() => match n { Some(n) => n, None => return },
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() { return; }
                    continue;
                }
            };
            let mut tries = 0;
            while let Err(e) = self.enqueue(&notice).await {
                tries += 1;
                if tries >= OUTBOX_WRITE_TRIES {
                    tracing::error!(error = %e, event = notice.event.as_str(), "notification lost: the outbox could not be written");
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }

    async fn worker(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut last_prune: Option<DateTime<Utc>> = None;
        loop {
            match self.deliver_due().await {
                // A full batch: more may be due, go on at once.
                Ok(n) if n as u32 >= CLAIM_BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "notification outbox unavailable"),
            }
            let now = self.clock.now();
            if last_prune.is_none_or(|t| now - t > chrono::Duration::hours(1)) {
                last_prune = Some(now);
                let before = now - chrono::Duration::days(i64::from(self.settings.retention_days));
                if let Err(e) = self.store.prune_notifications(before).await {
                    tracing::warn!(error = %e, "notification log not pruned");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = self.wake.notified() => {}
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() { return; }
                }
            }
        }
    }
}
