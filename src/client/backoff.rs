//! Reconnect backoff: a pure policy (`Backoff`) with its jitter passed in, and a small jitter
//! source (`Jitter`).

use std::time::Duration;

/// Exponential backoff with jitter: `initial`, doubling per failure up to `cap`, each delay drawn
/// from its upper half so that many clients do not reconnect in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    n_failures: u32,
}

/// Below this a doubling never gets anywhere; also the floor when a server sends `retry: 0`.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

impl Backoff {
    /// Starts at `initial` and never exceeds `cap`.
    pub fn new(initial: Duration, cap: Duration) -> Backoff {
        Backoff {
            initial,
            cap,
            n_failures: 0,
        }
    }

    /// The server's `retry:` field sets the first delay.
    pub fn set_initial(&mut self, initial: Duration) {
        self.initial = initial.min(self.cap);
    }

    /// After a healthy connection, start again from the first delay.
    pub fn reset(&mut self) {
        self.n_failures = 0;
    }

    /// The delay before the next attempt; `jitter` in `[0, 1)` picks a point in the upper half.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self.initial.max(MIN_BACKOFF);
        let factor = 1u32 << self.n_failures.min(16);
        let full = base.saturating_mul(factor).min(self.cap);
        self.n_failures = self.n_failures.saturating_add(1);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A small xorshift generator for jitter; seeded from the clock and pid, so two archivers started
/// together still spread out. Not for anything that needs real randomness.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded from the current time and process id.
    pub fn from_entropy() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// A number in `[0, 1)`.
    pub fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next_delay(0.999_999).as_secs())
            .collect();
        assert_eq!(delays, [0, 1, 3, 7, 15, 31, 59, 59, 59]);
        backoff.reset();
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(500));
    }

    #[test]
    fn backoff_jitter_stays_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_secs(8), Duration::from_secs(60));
        for jitter in [0.0, 0.25, 0.5, 0.99] {
            backoff.reset();
            let delay = backoff.next_delay(jitter);
            assert!(
                delay >= Duration::from_secs(4) && delay <= Duration::from_secs(8),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn server_retry_sets_the_first_delay_with_a_floor() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        backoff.set_initial(Duration::from_millis(100));
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(100));
        backoff.set_initial(Duration::ZERO);
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), MIN_BACKOFF);
        backoff.set_initial(Duration::from_secs(3600));
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(60));
    }

    #[test]
    fn jitter_is_in_range() {
        let mut jitter = Jitter(12345);
        for _ in 0..1000 {
            let j = jitter.next_fraction();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
