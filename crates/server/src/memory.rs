//! Returning freed memory to the operating system after instances leave memory.

use std::time::Duration;

use dormouse_runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// How often to check whether instances were dropped. Trimming walks the allocator's arenas, so
/// it runs at most this often, off the async threads.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Hibernation frees an object's memory, but glibc keeps freed pages mapped unless asked to
/// return them; this task asks, once per interval in which an instance was dropped.
pub(crate) async fn trim_loop(runtime: Runtime, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(TRIM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if runtime.take_memory_to_return() {
            let _ = tokio::task::spawn_blocking(return_free_memory).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers from us
    // and is thread-safe in glibc.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_memory() {}
