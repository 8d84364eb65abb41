//! Lowers the CPU priority of this process's threads that carry a given name (Linux only).
//!
//! Background database work that runs in a thread of our own process (SQLite executes every
//! statement on its connection's worker thread) competes with the proxy for the same cores. A
//! log cleanup deleting at full speed raised the proxy's added p99 from +0.6 ms to +2.5–4 ms
//! on two cores; the same deletion on threads at the lowest priority left it at about +0.8 ms,
//! because any proxy thread that wakes up takes the core at once. The kernel keeps a
//! thread's nice value per thread, so only the named threads are affected; the rest of the
//! process keeps its priority.

/// The nice value given to background threads: the lowest priority that still gets a share of
/// a fully busy CPU (about 1.5 % of a core against normal threads), so a statement that holds
/// SQLite's write lock always finishes (the idle scheduling class could stall it behind a busy
/// proxy while the log writer waits for the lock).
pub const BACKGROUND_NICE: i32 = 19;

/// The nice value of the embedded database's log writer thread for batches in no hurry
/// (`RequestLogStore::insert_logs_unhurried`): low enough that a waking request thread takes
/// the core at once, high enough to keep about a tenth of a core fully busy with normal threads
/// (nice 19 gets about 1.5 %). Measured on 2 cores at 1,000 requests/s (2026-12-07,
/// `docs/DESIGN.md`): median added p99 +1.99 ms with the inserts lowered against +2.53 ms at
/// normal priority; nice 10 gave +1.48 to +1.79 ms in its three runs.
pub const LOG_WRITER_NICE: i32 = 10;

/// Sets `nice` on every thread of this process whose name is `name` (only lowering works
/// without privileges); returns how many threads took it. Reads `/proc/self/task` (a few small
/// procfs reads: call it off the async runtime). Elsewhere than Linux it does nothing and
/// returns 0.
pub fn set_nice_of_threads_named(name: &str, nice: i32) -> usize {
    #[cfg(target_os = "linux")]
    {
        linux::lower(name, nice)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (name, nice);
        0
    }
}

/// Sets the calling thread's nice value (Linux keeps it per thread; only lowering works
/// without privileges); true when it took. Elsewhere than Linux it does nothing.
pub fn lower_this_thread(nice: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority has no memory effects; on Linux, PRIO_PROCESS with 0 names the
        // calling thread.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        false
    }
}

/// The nice value of each thread of this process named `name` (Linux; empty elsewhere), so
/// tests and diagnostics can see what [`set_nice_of_threads_named`] did.
pub fn nice_of_threads_named(name: &str) -> Vec<i32> {
    #[cfg(target_os = "linux")]
    {
        linux::threads_named(name)
            .into_iter()
            .filter_map(linux::nice_of)
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        Vec::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// Thread ids of this process whose `comm` is `name`.
    pub fn threads_named(name: &str) -> Vec<libc::id_t> {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let tid: libc::id_t = e.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                (comm.trim_end() == name).then_some(tid)
            })
            .collect()
    }

    pub fn lower(name: &str, nice: i32) -> usize {
        threads_named(name)
            .into_iter()
            .filter(|&tid| {
                // SAFETY: setpriority has no memory effects; on Linux PRIO_PROCESS with a
                // thread id sets that one thread's nice value.
                let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
                rc == 0
            })
            .count()
    }

    pub fn nice_of(tid: libc::id_t) -> Option<i32> {
        // getpriority returns -1 both as a value and as an error: clear errno to tell them
        // apart.
        // SAFETY: errno is thread-local; getpriority has no memory effects.
        unsafe {
            *libc::__errno_location() = 0;
            let v = libc::getpriority(libc::PRIO_PROCESS, tid);
            (v != -1 || *libc::__errno_location() == 0).then_some(v)
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_threads_are_lowered() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let named = std::thread::Builder::new()
            .name("cch-prio-test".into())
            .spawn(move || {
                ready_tx.send(()).unwrap();
                let _ = stop_rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        // SAFETY: as in `nice_of`.
        let own = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let own_before = own();
        assert_eq!(nice_of_threads_named("cch-prio-test"), vec![own_before]);
        assert_eq!(
            set_nice_of_threads_named("cch-prio-test", BACKGROUND_NICE),
            1
        );
        assert_eq!(
            nice_of_threads_named("cch-prio-test"),
            vec![BACKGROUND_NICE]
        );
        assert_eq!(own(), own_before, "other threads keep their priority");
        stop_tx.send(()).unwrap();
        named.join().unwrap();
        assert_eq!(
            set_nice_of_threads_named("cch-prio-test", BACKGROUND_NICE),
            0,
            "gone with its thread"
        );
    }
}
