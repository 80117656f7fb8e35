//! The tokio runtime the desktop app's worker runs on.

/// Builds the runtime for the desktop app's I/O: the worker, its transfers, the embedded store
/// and the relay.
///
/// Every thread of this runtime (workers and the blocking pool, and the threads they start,
/// which inherit it) is marked as batch work: on Linux, `SCHED_BATCH`. Such a thread keeps its
/// full share of the CPU, but waking up does not preempt a thread that is running. On a machine
/// whose cores are busy with a transfer, this keeps a transfer's wake-ups (tens of thousands a
/// second with many small files) from cutting the window thread's frame in the middle. The
/// thread that calls this, which draws the window, stays as it was. On other systems the
/// threads keep the default.
///
/// Measured with `cargo bench --bench ui_transfers` (2 cores, 10,000 small uploads to the
/// embedded store, 6 interleaved rounds): frame time p99 3.7–6.5 ms before, 2.4–3.4 ms after,
/// and the uploads 1–8% faster (the worker's own threads preempt each other less, too).
///
/// # Errors
/// When the runtime's threads cannot be started.
pub fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("s3share-io")
        .on_thread_start(run_as_batch_work)
        .build()
}

/// Marks the calling thread as batch work (see [`io_runtime`]).
fn run_as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 names the calling thread, and `param` is a valid `sched_param` (batch
        // work takes priority 0) that outlives the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &raw const param) };
        if rc != 0 {
            // Only the frame's smoothness is at stake, never a transfer: say so where it is
            // looked for, and go on at the default.
            tracing::debug!(
                "cannot mark an I/O thread as batch work: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn policy() -> libc::c_int {
        // SAFETY: pid 0 names the calling thread; no memory is passed.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_apps_io_threads_are_batch_work_and_the_window_thread_is_not() {
        let before = policy();
        assert_ne!(
            before,
            libc::SCHED_BATCH,
            "a test thread starts as normal work"
        );
        let runtime = io_runtime().unwrap();
        let on_worker = runtime.block_on(runtime.spawn(async { policy() })).unwrap();
        let on_blocking = runtime.block_on(runtime.spawn_blocking(policy)).unwrap();
        // A thread a task starts for itself (the relay's, a download's receiver) inherits.
        let on_started_thread = runtime
            .block_on(runtime.spawn(async { std::thread::spawn(policy).join().unwrap() }))
            .unwrap();
        assert_eq!(on_worker, libc::SCHED_BATCH, "worker thread");
        assert_eq!(on_blocking, libc::SCHED_BATCH, "blocking-pool thread");
        assert_eq!(
            on_started_thread,
            libc::SCHED_BATCH,
            "thread started by a task"
        );
        assert_eq!(
            policy(),
            before,
            "the thread that built the runtime keeps its policy"
        );
    }
}
