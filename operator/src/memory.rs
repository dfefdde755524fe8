//! The process's memory, as the allocator sees it. The caches are small (see
//! `controller::caches`); what else grows RSS is glibc's allocator keeping freed memory:
//! a bulk create parses and drops tens of MiB of watch events and apply responses, spread
//! over one arena per busy thread, and RSS stays near the peak long after the heap in use
//! has shrunk (figures in `docs/benchmarks.md`). musl (the image) returns freed memory by itself; there this module does nothing.

use std::time::Duration;

/// How often freed memory is handed back: cheap (a walk over the arenas' free lists: well
/// under a millisecond of CPU at 1,000 Microservices) and frequent enough that RSS
/// follows a burst down within seconds, as jemalloc's decay would.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// One arena instead of eight per core: the controller's threads share it with little
/// contention (reconciles wait on the API server, not on malloc), and memory freed by
/// one thread is reused by the others instead of sitting in a second arena's free lists.
/// Call before the runtime starts its threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the memory freed since the last call back to the system, every [`TRIM_EVERY`],
/// for the life of the process.
pub async fn return_freed_memory() {
    let mut ticks = tokio::time::interval(TRIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        trim();
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe; 0 keeps no padding at the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}
