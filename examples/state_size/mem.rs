//! Memory readings for `state_size`: the heap in use (jemalloc's statistics, the allocator
//! cxstream links), a trim, and the process RSS (`/proc/self/statm`).

/// Bytes allocated and in use (jemalloc's `stats.allocated`: cxstream's allocator, see
/// `cxstream::alloc`; size-class rounding included).
pub fn heap() -> Option<u64> {
    cxstream::alloc::usage().map(|u| u.allocated)
}

/// Returns free pages to the OS (jemalloc's and the C library's).
pub fn trim() {
    cxstream::alloc::trim();
}

/// Resident set size in bytes (`/proc/self/statm`, pages of 4 KiB).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub heap: f64,
    pub rss: f64,
}

pub fn reading() -> Reading {
    trim();
    Reading {
        heap: heap().unwrap_or(0) as f64,
        rss: rss() as f64,
    }
}

impl std::ops::Sub for Reading {
    type Output = Reading;
    fn sub(self, o: Reading) -> Reading {
        Reading {
            heap: self.heap - o.heap,
            rss: self.rss - o.rss,
        }
    }
}

impl Reading {
    pub fn per(self, n: f64) -> Reading {
        Reading {
            heap: self.heap / n,
            rss: self.rss / n,
        }
    }
    pub fn minus(self, o: Reading, k: f64) -> Reading {
        Reading {
            heap: self.heap - k * o.heap,
            rss: self.rss - k * o.rss,
        }
    }
}
