//! Gives freed heap memory back to the kernel on a timer (glibc only).
//!
//! Rust's allocations go to jemalloc (`src/main.rs`), which returns freed pages itself from its
//! background threads. glibc's malloc still serves the C code linked in (SQLite's page caches
//! and statements), and it keeps memory that was freed inside its arenas (one per thread that
//! allocated) unless it sits at the very top of a heap, and it raises its trim threshold after
//! large frees. When glibc served everything, RSS stayed at a burst's high-water mark for the
//! life of the process after thousands of requests were in flight while Redis or the database
//! was slow (464 MB in a soak, when a single `malloc_trim(0)` brought the same process to
//! 108 MB). The task calls `malloc_trim(0)` every [`INTERVAL`] on a blocking thread; with
//! little free memory it has little to do. Other C libraries return memory differently, so it
//! does nothing there.

use std::time::{Duration, Instant};

/// How often freed memory is returned.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Starts the timer; it stops when `shutdown` turns true.
pub fn spawn(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let took = tokio::task::spawn_blocking(trim).await.unwrap_or_default();
                    tracing::debug!(took_us = took.as_micros() as u64, "heap trimmed");
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// One trim; how long it took.
fn trim() -> Duration {
    let started = Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes their locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn freed_memory_below_a_live_block_goes_back_to_the_kernel() {
        // 64 MB in 1 KB blocks, then one block kept above them all: freeing the rest leaves
        // them inside the heap, where glibc keeps them until trimmed.
        let blocks: Vec<Vec<u8>> = (0..65_536).map(|i| vec![i as u8; 1024]).collect();
        let keep = vec![1u8; 1024];
        drop(blocks);
        let before = rss_kb();
        let took = super::trim();
        let after = rss_kb();
        assert!(
            before.saturating_sub(after) > 32 * 1024,
            "RSS {before} kB -> {after} kB"
        );
        assert!(took < std::time::Duration::from_secs(1));
        assert_eq!(keep[0], 1);
    }
}
