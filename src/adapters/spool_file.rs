//! The log spool as JSON-lines files in the data folder: new rows are appended to
//! `request_logs.spool`; a replay first renames it to `request_logs.replaying` (atomic), so rows
//! appended during a replay land in a fresh file and nothing is read twice or dropped.
//! Every file operation runs on the blocking pool (no runtime thread may wait on the disk); a
//! replay reads the file in chunks of rows from a byte offset, never the whole of it at once.

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

/// Longest spool line read (a row is a few KB; a longer line is corrupt and skipped).
const MAX_LINE_BYTES: u64 = 4 << 20;

/// Up to `max` rows of `path` from byte `offset`, and the offset after them (`None` at the
/// end of the file).
fn read_chunk(
    path: &PathBuf,
    offset: u64,
    max: usize,
) -> std::io::Result<(Vec<RequestLog>, Option<u64>)> {
    use std::io::{BufRead, Read, Seek};
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(e),
    };
    let mut reader = std::io::BufReader::new(file);
    reader.seek(std::io::SeekFrom::Start(offset))?;
    let mut rows = Vec::new();
    let mut pos = offset;
    let mut line = Vec::new();
    while rows.len() < max {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok((rows, None));
        }
        pos += n as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RequestLog>(&line) {
            Ok(r) => rows.push(r),
            // A torn last line (crash mid-write) or an oversized one is skipped, not fatal.
            Err(e) => tracing::warn!(offset = pos, error = %e, "skipping unreadable spool line"),
        }
    }
    Ok((rows, Some(pos)))
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

    async fn pending_chunk(
        &self,
        cursor: u64,
        max: usize,
    ) -> std::io::Result<(Vec<RequestLog>, Option<u64>)> {
        let _g = self.lock.lock().await;
        let (active, replaying) = (self.active.clone(), self.replaying.clone());
        blocking(move || {
            if cursor == 0 && !replaying.exists() && active.exists() {
                std::fs::rename(&active, &replaying)?;
            }
            read_chunk(&replaying, cursor, max)
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
