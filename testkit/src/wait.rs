//! Waiting for a condition: always with a deadline, and a failure that says what was
//! awaited.

use std::future::Future;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

/// Blocks until `check` holds; panics after `secs` seconds naming `what`.
pub fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Blocks until what `probe` returns satisfies `ok`, and returns it; panics after
/// `secs` seconds naming `what` and showing the last value seen.
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    secs: u64,
    mut probe: impl FnMut() -> T,
    ok: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let seen = probe();
        if ok(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}; last seen: {seen:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Polls `probe` until its value has not changed for `idle` (a topic that stopped
/// growing, say) and returns that value: how a test makes sure nothing more arrives
/// without a fixed sleep. Panics if it still changes after `secs` seconds.
pub fn settle<T: PartialEq + std::fmt::Debug>(
    what: &str,
    secs: u64,
    idle: Duration,
    mut probe: impl FnMut() -> T,
) -> T {
    let mut s = Settling::new(secs, idle, probe());
    while !s.settled(what) {
        std::thread::sleep(POLL);
        s.observe(probe());
    }
    s.seen
}

/// [`settle`] in async code.
pub async fn settle_async<T: PartialEq + std::fmt::Debug>(
    what: &str,
    secs: u64,
    idle: Duration,
    mut probe: impl FnMut() -> T,
) -> T {
    let mut s = Settling::new(secs, idle, probe());
    while !s.settled(what) {
        tokio::time::sleep(POLL).await;
        s.observe(probe());
    }
    s.seen
}

/// A value watched until it stops changing.
struct Settling<T> {
    seen: T,
    since: Instant,
    idle: Duration,
    deadline: Instant,
    secs: u64,
}

impl<T: PartialEq + std::fmt::Debug> Settling<T> {
    fn new(secs: u64, idle: Duration, first: T) -> Settling<T> {
        Settling {
            seen: first,
            since: Instant::now(),
            idle,
            deadline: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    /// Unchanged for the idle time; panics past the deadline.
    fn settled(&self, what: &str) -> bool {
        if self.since.elapsed() >= self.idle {
            return true;
        }
        assert!(
            Instant::now() < self.deadline,
            "{what} was still changing after {}s; last seen: {:?}",
            self.secs,
            self.seen
        );
        false
    }

    fn observe(&mut self, now: T) {
        if now != self.seen {
            self.seen = now;
            self.since = Instant::now();
        }
    }
}

/// [`wait_for`] in async code.
pub async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] with an async check.
pub async fn eventually_async<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}
