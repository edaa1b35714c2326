//! Graceful shutdown, in the style of mini-redis: only `main` listens to signals; it holds the
//! [`Trigger`], and every long-running piece — the Kafka pipeline's poll loop, the demo, the
//! metrics server, the producer's retry loops — gets a cloned [`Shutdown`] handle and checks
//! or awaits it. Library code never installs a signal handler, so tests and embedders decide
//! when to stop.
//!
//! The handle works for both worlds: synchronous loops call [`Shutdown::is_triggered`] or
//! sleep with [`Shutdown::sleep`] (which wakes at once when shutdown starts), async tasks
//! await [`Shutdown::wait`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shared between the trigger and every handle.
#[derive(Debug, Default)]
struct Inner {
    /// Set once shutdown has started; never cleared.
    triggered: AtomicBool,
    /// Wakes async waiters.
    notify: tokio::sync::Notify,
    /// Wakes synchronous sleepers (the mutex guards nothing but the condvar protocol).
    lock: Mutex<()>,
    cv: Condvar,
}

/// A handle that says whether shutdown has started. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

/// Starts the shutdown of every handle made from it. Held by `main` (or a test).
#[derive(Debug, Clone)]
pub struct Trigger {
    inner: Arc<Inner>,
}

/// A new trigger and its first handle.
pub fn channel() -> (Trigger, Shutdown) {
    let s = Shutdown::default();
    (
        Trigger {
            inner: Arc::clone(&s.inner),
        },
        s,
    )
}

impl Trigger {
    /// Starts shutdown: every handle sees it, sleepers and waiters wake up.
    pub fn fire(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.cv.notify_all();
    }

    /// A handle on this trigger.
    pub fn handle(&self) -> Shutdown {
        Shutdown {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Shutdown {
    /// A handle that is never triggered (for one-shot tools and tests that stop otherwise).
    pub fn never() -> Shutdown {
        Shutdown::default()
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, waking early when shutdown starts. Returns whether it has.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_triggered() {
            return true;
        }
        let _ = self
            .inner
            .cv
            .wait_timeout_while(guard, d, |_| !self.is_triggered());
        self.is_triggered()
    }

    /// Completes once shutdown has started.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// Waits for thread `t` to finish, at most `budget`: `true` if it did (it is then joined).
/// Otherwise it is left running (detached) — a shutdown step that waits on a broker cannot
/// hold the process past its deadline; the thread ends with the process.
pub fn join_within(t: std::thread::JoinHandle<()>, budget: Duration) -> bool {
    let deadline = std::time::Instant::now() + budget;
    while !t.is_finished() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = t.join();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_sleeper_wakes_when_shutdown_starts() {
        let (trigger, s) = channel();
        assert!(!s.sleep(Duration::from_millis(1)));
        let t = std::thread::spawn(move || s.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        let fired = Instant::now();
        trigger.fire();
        assert!(t.join().unwrap());
        assert!(fired.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn async_waiters_wake_and_late_waiters_return_at_once() {
        let (trigger, s) = channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s2 = s.clone();
            let waiter = tokio::spawn(async move { s2.wait().await });
            tokio::task::yield_now().await;
            trigger.fire();
            waiter.await.unwrap();
            s.wait().await;
        });
        assert!(trigger.handle().is_triggered());
        assert!(!Shutdown::never().is_triggered());
    }
}
