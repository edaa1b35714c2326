//! The memory allocator (issue 12): jemalloc for every allocation of the process — cxstream's
//! Rust code and the C libraries linked into it (librdkafka's queues and fetch buffers,
//! OpenSSL, zlib) —, configured to give freed pages back to the OS at once, so that the
//! process's RSS follows the memory in use (the state, per-entity sizes) rather than the
//! high-water mark of every burst.
//!
//! Why not the C library's malloc: glibc keeps freed chunks in per-thread arenas and returns
//! pages only from an arena's top or on `malloc_trim`. State that comes and goes — a
//! checkpoint image, the producer queue during a broker hiccup, tickets and customers evicted
//! by a sweep — left the 20k events/s soak holding ~45 MB more than it used (57.5 of 102.8 MB
//! in use), and a trim every 10 s returned only part of it. With jemalloc and
//! [`malloc_conf`]'s zero decay the same run holds a few MB above what it uses, and
//! 1M tickets + 1M customers + 2M event ids take 386 MiB instead of 399 (docs/soak.md).
//!
//! jemalloc is built unprefixed (`unprefixed_malloc_on_supported_platforms`): on Linux the
//! executable defines `malloc`, `free` and the rest, which take precedence over glibc's for
//! every library, so librdkafka's buffers are in jemalloc's statistics ([`usage`]) and are
//! returned at once as well. Until 2026-12-01 they stayed with glibc, trimmed every 10 s: the
//! soak's RSS outside the Rust heap then swung between 5 and 47 MB (docs/soak.md). On
//! platforms without unprefixed support (macOS) the C libraries keep the system's malloc.

use std::time::Duration;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation: freed pages are returned to the OS
/// immediately (`dirty_decay_ms:0`, `muzzy_decay_ms:0`) instead of after 10 s of decay, at
/// the cost of a `madvise` per freed page run (no measurable CPU at 20k events/s live; while
/// `run` works through a backlog it keeps them 1 s, [`DecayByLoad`], and `replay`, a batch
/// job, sets jemalloc's own 10 s at start with [`set_decay_ms`]). The environment variable
/// `MALLOC_CONF` overrides them and turns both off (jemalloc's syntax, e.g.
/// `dirty_decay_ms:10000`). Allocations of 4 MiB and more (`oversize_threshold`; jemalloc's
/// default is 8 MiB) come from jemalloc's arena for large allocations, created at the first
/// one with zero decay. `replay` raises the decay before that arena exists, so there a state
/// table that grows gives its old memory back at once (with 8 MiB, the replay's 10 s decay
/// took the 1M tickets + 1M customers test from 385 to 407–410 MiB, above its 400 MiB target;
/// with 4 MiB, 395 MiB). [`set_decay_ms`] reaches every arena that exists, so while `run` is
/// behind the large-allocation arena keeps freed pages 1 s like the others; 1 MiB gave the
/// memory test 389 MiB but cost that backlog a quarter of its speed (8.9 s → 11.0 s).
#[allow(non_upper_case_globals)]
#[export_name = "malloc_conf"]
pub static malloc_conf: &[u8; 61] =
    b"dirty_decay_ms:0,muzzy_decay_ms:0,oversize_threshold:4194304\0";

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

/// Returns jemalloc's unused pages to the OS now (none are kept with the zero decay, unless
/// `MALLOC_CONF` changed it).
pub fn trim() {
    // MALLCTL_ARENAS_ALL (4096) names every arena; the purge takes no value.
    // SAFETY: a write of `()` to a command that takes none.
    let _ = unsafe { tikv_jemalloc_ctl::raw::write(b"arena.4096.purge\0", ()) };
}

/// jemalloc's own default decay (10 s), which `replay` uses instead of [`malloc_conf`]'s zero.
pub const BATCH_DECAY_MS: isize = 10_000;

/// The decay `run` uses while it works through a backlog ([`DecayByLoad`]).
pub const BACKLOG_DECAY_MS: isize = 1_000;

/// Rounds of the poll loop in a row that find less than a full batch before `run` counts as
/// keeping up again.
const CALM_ROUNDS: u32 = 50;

/// The decay of freed pages follows the input of `run`: zero while the pipeline keeps up,
/// so that RSS follows the state (issue 12), and [`BACKLOG_DECAY_MS`] while it works through
/// a backlog, where the zero decay's `madvise` and page fault per freed and reused page run
/// (librdkafka's fetch buffers, window parts, checkpoint images) cost more than a third of
/// the CPU: on a 1M-event backlog over 3 partitions, 18.4 s of CPU and 82k events/s over the
/// processing span instead of 11.6 s and 121k/s (README benchmarks). Keeping 1 s of freed
/// pages at 20k events/s live costs ~12 MB of RSS (docs/soak.md), hence only while behind.
/// Back to zero (and a purge) after [`CALM_ROUNDS`] rounds in a row that were not behind.
#[derive(Debug, Default)]
pub struct DecayByLoad {
    backlog: bool,
    calm: u32,
}

impl DecayByLoad {
    /// One round of the poll loop; `full` says whether it was behind (it took a full batch:
    /// more input was waiting). Returns whether the decay changed. (An input paused for the
    /// output does not count: live, every checkpoint pauses it briefly, and each return to
    /// zero purges what was kept, a latency spike for nothing.)
    pub fn observe(&mut self, full: bool) -> bool {
        if full {
            self.calm = 0;
            if !self.backlog {
                self.backlog = true;
                set_decay_ms(BACKLOG_DECAY_MS);
                return true;
            }
        } else if self.backlog {
            self.calm += 1;
            if self.calm >= CALM_ROUNDS {
                self.backlog = false;
                set_decay_ms(0);
                trim();
                return true;
            }
        }
        false
    }

    /// Whether the pipeline is working through a backlog.
    pub fn backlog(&self) -> bool {
        self.backlog
    }
}

/// For a batch job (`replay`): freed pages stay with jemalloc for up to `ms` milliseconds
/// before they are returned, so that memory freed and allocated again soon after (the
/// window histograms of a replay, the records written on the other thread) is reused
/// instead of returned and faulted in again. On the 1M-event file this took the default
/// configuration's replay from 2.8 s to 1.7 s, for 6 MB more peak RSS (README benchmarks).
/// Every arena that exists gets `ms`, the arena for large allocations included once it was
/// created ([`malloc_conf`]); arenas created later take it too. Nothing changes if
/// `MALLOC_CONF` is set: the user's choice stands.
pub fn set_decay_ms(ms: isize) {
    if std::env::var_os("MALLOC_CONF").is_some() {
        return;
    }
    // SAFETY: each of these options is an `ssize_t`, written by name; an arena that does not
    // exist (yet) answers with an error, which is ignored (new arenas take `arenas.*`).
    unsafe {
        let _ = tikv_jemalloc_ctl::raw::write(b"arenas.dirty_decay_ms\0", ms);
        let _ = tikv_jemalloc_ctl::raw::write(b"arenas.muzzy_decay_ms\0", ms);
        let n = tikv_jemalloc_ctl::raw::read::<u32>(b"arenas.narenas\0").unwrap_or(0);
        for i in 0..n {
            for kind in ["dirty", "muzzy"] {
                let name = format!("arena.{i}.{kind}_decay_ms\0");
                let _ = tikv_jemalloc_ctl::raw::write(name.as_bytes(), ms);
            }
        }
    }
}

/// The decay of freed pages in effect in the arena of the calling thread, in ms
/// (`arena.<i>.dirty_decay_ms`), if it can be read.
pub fn current_decay_ms() -> Option<isize> {
    // SAFETY: `thread.arena` is an `unsigned`, the decay an `ssize_t`, read by name.
    unsafe {
        let i = tikv_jemalloc_ctl::raw::read::<u32>(b"thread.arena\0").ok()?;
        let name = format!("arena.{i}.dirty_decay_ms\0");
        tikv_jemalloc_ctl::raw::read::<isize>(name.as_bytes()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jemalloc's statistics are the process's: the tests that read them run one at a time.
    static STATS: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
        let _one = STATS.lock().unwrap_or_else(|e| e.into_inner());
        if std::env::var_os("MALLOC_CONF").is_none() {
            assert_eq!(decay_ms(), Some((0, 0)));
        }
        let before = usage().expect("jemalloc statistics");
        // black_box: an allocation whose bytes are never read may be optimised away.
        let block = std::hint::black_box(vec![7u8; 64 << 20]);
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

    /// A batch job's decay reaches the arena already in use and goes back to zero.
    #[test]
    fn the_decay_can_be_set_at_run_time() {
        let _one = STATS.lock().unwrap_or_else(|e| e.into_inner());
        if std::env::var_os("MALLOC_CONF").is_some() {
            return;
        }
        drop(std::hint::black_box(vec![0u8; 1 << 20]));
        assert_eq!(current_decay_ms(), Some(0));
        set_decay_ms(BATCH_DECAY_MS);
        assert_eq!(current_decay_ms(), Some(BATCH_DECAY_MS));
        set_decay_ms(0);
        assert_eq!(current_decay_ms(), Some(0));
    }

    /// A backlog keeps freed pages 1 s; 50 rounds without a full batch go back to zero.
    #[test]
    fn the_decay_follows_the_backlog() {
        let _one = STATS.lock().unwrap_or_else(|e| e.into_inner());
        if std::env::var_os("MALLOC_CONF").is_some() {
            return;
        }
        drop(std::hint::black_box(vec![0u8; 1 << 20]));
        let mut d = DecayByLoad::default();
        assert!(!d.observe(false));
        assert_eq!(current_decay_ms(), Some(0));
        assert!(d.observe(true));
        assert!(d.backlog());
        assert_eq!(current_decay_ms(), Some(BACKLOG_DECAY_MS));
        for _ in 0..CALM_ROUNDS - 1 {
            assert!(!d.observe(false));
        }
        assert!(!d.observe(true), "a full batch starts the count again");
        for _ in 0..CALM_ROUNDS - 1 {
            assert!(!d.observe(false));
        }
        assert_eq!(current_decay_ms(), Some(BACKLOG_DECAY_MS));
        assert!(d.observe(false));
        assert!(!d.backlog());
        assert_eq!(current_decay_ms(), Some(0));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    extern "C" {
        fn strdup(s: *const std::ffi::c_char) -> *mut std::ffi::c_char;
        fn free(p: *mut std::ffi::c_void);
    }

    /// What a C library allocates with `malloc` (here glibc's `strdup`, as librdkafka does
    /// for its buffers) is jemalloc's too: counted in [`usage`] and returned at once.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn c_libraries_allocate_from_jemalloc() {
        let _one = STATS.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = vec![b'x'; (64 << 20) + 1];
        text[64 << 20] = 0;
        let before = usage().expect("jemalloc statistics");
        // SAFETY: `text` is NUL-terminated; the copy is freed once, with the C library's free.
        let copy = std::hint::black_box(unsafe { strdup(text.as_ptr().cast()) });
        assert!(!copy.is_null());
        let during = usage().expect("jemalloc statistics");
        unsafe { free(copy.cast()) };
        let after = usage().expect("jemalloc statistics");
        assert!(
            during.allocated >= before.allocated + (64 << 20) - (1 << 20),
            "{before:?} {during:?}"
        );
        assert!(
            after.allocated + (32 << 20) < during.allocated,
            "{during:?} {after:?}"
        );
    }
}
