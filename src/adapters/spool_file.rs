//! The log spool as JSON-lines files in the data folder: new rows are appended to
//! `request_logs.spool`; a replay first renames it to `request_logs.replaying` (atomic), so rows
//! appended during a replay land in a fresh file and nothing is read twice or dropped.
//! Every file operation runs on the blocking pool: a replay reads the whole spool, and no
//! runtime thread may wait on the disk.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::domain::request_log::RequestLog;
use crate::ports::spool::LogSpool;

/// File-backed spool.
pub struct FileSpool {
    active: PathBuf,
    replaying: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSpool {
    /// A spool inside `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        crate::app::private_fs::create_private_dir(&dir)?;
        Ok(Self {
            active: dir.join("request_logs.spool"),
            replaying: dir.join("request_logs.replaying"),
            lock: tokio::sync::Mutex::new(()),
        })
    }
}

fn read_lines(path: &PathBuf) -> std::io::Result<Vec<RequestLog>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RequestLog>(line) {
            Ok(r) => rows.push(r),
            // A torn last line (crash mid-write) is skipped, not fatal.
            Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping unreadable spool line"),
        }
    }
    Ok(rows)
}

/// Runs a file operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

#[async_trait]
impl LogSpool for FileSpool {
    async fn append(&self, rows: &[RequestLog]) -> std::io::Result<()> {
        let _g = self.lock.lock().await;
        let mut buf = Vec::new();
        for r in rows {
            serde_json::to_writer(&mut buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let path = self.active.clone();
        blocking(move || {
            let mut f = crate::app::private_fs::private_file_options()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
    }

    async fn pending(&self) -> std::io::Result<Vec<RequestLog>> {
        let _g = self.lock.lock().await;
        let (active, replaying) = (self.active.clone(), self.replaying.clone());
        blocking(move || {
            if !replaying.exists() && active.exists() {
                std::fs::rename(&active, &replaying)?;
            }
            read_lines(&replaying)
        })
        .await
    }

    async fn commit_replay(&self) -> std::io::Result<()> {
        let _g = self.lock.lock().await;
        let replaying = self.replaying.clone();
        blocking(move || match std::fs::remove_file(&replaying) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }

    async fn is_empty(&self) -> bool {
        let _g = self.lock.lock().await;
        let (active, replaying) = (self.active.clone(), self.replaying.clone());
        // An unreadable folder counts as not empty: the replay then reports the error.
        blocking(move || Ok(!active.exists() && !replaying.exists()))
            .await
            .unwrap_or(false)
    }
}
