//! Memory readings for `state_size`: the heap in use (glibc `mallinfo2`, every arena plus
//! mmapped blocks), `malloc_trim`, and the process RSS (`/proc/self/statm`); elsewhere than
//! glibc only RSS.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// `struct mallinfo2` of glibc ≥ 2.33.
    #[repr(C)]
    pub struct Mallinfo2 {
        pub arena: usize,
        pub ordblks: usize,
        pub smblks: usize,
        pub hblks: usize,
        pub hblkhd: usize,
        pub usmblks: usize,
        pub fsmblks: usize,
        pub uordblks: usize,
        pub fordblks: usize,
        pub keepcost: usize,
    }
    extern "C" {
        pub fn mallinfo2() -> Mallinfo2;
        pub fn malloc_trim(pad: usize) -> i32;
    }
}

/// Bytes allocated by malloc (chunks in use in every arena plus mmapped blocks).
pub fn heap() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: plain glibc calls without arguments that point anywhere.
        let m = unsafe { glibc::mallinfo2() };
        Some((m.uordblks + m.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Returns free memory at the top of every arena and whole free pages to the OS.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above.
    unsafe {
        glibc::malloc_trim(0);
    }
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
