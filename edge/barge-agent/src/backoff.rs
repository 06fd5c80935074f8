//! Exponential backoff with full jitter: the n-th wait is uniform in
//! `[0, min(cap, base * 2^n)]`, so that many edges losing the same hub come back spread out
//! instead of all at once.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    attempt: u32,
}

/// A random u64 (the standard library's per-process random hash keys; no crypto need).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next wait.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next wait (and one more attempt counted).
    pub fn next_wait(&mut self) -> Duration {
        let ceil = self.ceiling().as_millis() as u64;
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(if ceil == 0 { 0 } else { random() % (ceil + 1) })
    }

    /// Start over (after a session was established).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_stays_under_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let c = b.ceiling();
            let w = b.next_wait();
            assert!(w <= c, "{w:?} > {c:?}");
            ceilings.push(c.as_millis());
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        // Jitter: not every wait is the same.
        let waits: std::collections::BTreeSet<_> = (0..20)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
                b.next_wait()
            })
            .collect();
        assert!(waits.len() > 1);
    }
}
