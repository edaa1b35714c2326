//! The memory allocator (issue 12): jemalloc for every Rust allocation, configured to give
//! freed pages back to the OS at once, so that the process's RSS follows the memory in use
//! (the state, per-entity sizes) rather than the high-water mark of every burst.
//!
//! Why not the C library's malloc: glibc keeps freed chunks in per-thread arenas and returns
//! pages only from an arena's top or on `malloc_trim`. State that comes and goes — a
//! checkpoint image, the producer queue during a broker hiccup, tickets and customers evicted
//! by a sweep — left the 20k events/s soak holding ~45 MB more than it used (57.5 of 102.8 MB
//! in use), and a trim every 10 s returned only part of it. With jemalloc and
//! [`malloc_conf`]'s zero decay the same run holds ~5 MB above what it uses, and
//! 1M tickets + 1M customers + 2M event ids take 386 MiB instead of 399 (docs/soak.md).
//!
//! librdkafka's own C allocations (its queues and buffers) stay with the C library's malloc:
//! [`trim`] returns what that frees, every [`TRIM_EVERY`] in `run`.

use std::time::Duration;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation: freed pages are returned to the OS
/// immediately (`dirty_decay_ms:0`, `muzzy_decay_ms:0`) instead of after 10 s of decay, at
/// the cost of a `madvise` per freed page run (no measurable CPU at 20k events/s, nor in
/// replay). The environment variable `_RJEM_MALLOC_CONF` overrides them (jemalloc's syntax,
/// e.g. `dirty_decay_ms:10000`).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 34] = b"dirty_decay_ms:0,muzzy_decay_ms:0\0";

/// How often `run` calls [`trim`].
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// What the allocator holds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Allocated by cxstream's Rust code and in use (jemalloc's `stats.allocated`).
    pub allocated: u64,
    /// Physical memory jemalloc holds: what is in use, its size-class rounding, partly used
    /// pages and its own metadata (`stats.resident`).
    pub resident: u64,
}

/// The allocator's current [`Usage`] (`None` if jemalloc's statistics cannot be read).
pub fn usage() -> Option<Usage> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    Some(Usage {
        allocated: tikv_jemalloc_ctl::stats::allocated::read().ok()? as u64,
        resident: tikv_jemalloc_ctl::stats::resident::read().ok()? as u64,
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Returns free pages to the OS now: jemalloc's unused pages (none are kept with the zero
/// decay, unless `_RJEM_MALLOC_CONF` changed it) and the C library's (librdkafka's freed
/// buffers; glibc's `malloc_trim(0)`, about a millisecond per 100 MB of its heap).
pub fn trim() {
    // MALLCTL_ARENAS_ALL (4096) names every arena; the purge takes no value.
    // SAFETY: a write of `()` to a command that takes none.
    let _ = unsafe { tikv_jemalloc_ctl::raw::write(b"arena.4096.purge\0", ()) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer; it walks glibc's own arenas under their locks.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decay of freed pages in effect (`opt.dirty_decay_ms`, `opt.muzzy_decay_ms`).
    fn decay_ms() -> Option<(isize, isize)> {
        // SAFETY: both options are `ssize_t`, read by name.
        unsafe {
            Some((
                tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0").ok()?,
                tikv_jemalloc_ctl::raw::read::<isize>(b"opt.muzzy_decay_ms\0").ok()?,
            ))
        }
    }

    /// Rust allocations go to jemalloc, with the zero decay that makes RSS follow the memory
    /// in use, and its statistics see them.
    #[test]
    fn jemalloc_serves_rust_allocations_and_returns_pages_at_once() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            assert_eq!(decay_ms(), Some((0, 0)));
        }
        let before = usage().expect("jemalloc statistics");
        let block = vec![7u8; 64 << 20];
        let during = usage().expect("jemalloc statistics");
        assert!(during.allocated >= before.allocated + (64 << 20) - (1 << 20));
        assert!(during.resident >= during.allocated);
        drop(block);
        trim();
        let after = usage().expect("jemalloc statistics");
        assert!(
            after.resident + (32 << 20) < during.resident,
            "{before:?} {during:?} {after:?}"
        );
    }
}
