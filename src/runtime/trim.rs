//! Returning freed heap memory to the OS (glibc): `run` calls [`trim`] every
//! [`TRIM_EVERY`], so its RSS follows the memory in use — the state, per-entity sizes — rather
//! than the high-water mark of every burst and the chunks freed by state that came and went
//! (a checkpoint while held, the producer queue during a broker hiccup, tickets and customers
//! evicted by a sweep). glibc keeps freed chunks in its arenas and returns only the top of the
//! main heap by itself; `malloc_trim(0)` also releases the free pages inside every arena
//! (`madvise(MADV_DONTNEED)`). It takes about a millisecond per 100 MB of heap, on the polling
//! thread. Elsewhere than glibc it does nothing.

use std::time::Duration;

/// How often `run` trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Releases free heap pages to the OS; `true` if some were released.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer; it walks glibc's own arenas under their locks.
        unsafe { malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
