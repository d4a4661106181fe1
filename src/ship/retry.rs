//! When to try a failed delivery again: pure `retry_delay`, and `jitter` to spread retries.

use std::time::Duration;

use super::Failure;

/// Retries of a failure only an operator can fix.
const OPERATOR_RETRY: Duration = Duration::from_secs(30);
/// The first retry of any other failure, doubling up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// A number in [0, 1) for spreading retries.
pub fn jitter() -> f64 {
    let mut byte = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    f64::from(u16::from_le_bytes(byte)) / 65_536.0
}

/// How long to wait after the `n_failures`-th failure in a row: what `Retry-After` asks (at
/// most `MAX_RETRY_AFTER`); a steady `OPERATOR_RETRY` for what an operator must fix; else
/// doubling from `FIRST_RETRY` up to `MAX_RETRY`, of which the second half is random (jitter).
pub fn retry_delay(n_failures: u32, failure: &Failure, jitter: f64) -> Duration {
    if let Some(asked) = failure.retry_after {
        return asked.min(MAX_RETRY_AFTER);
    }
    if failure.kind.needs_operator() {
        return OPERATOR_RETRY;
    }
    let doubled = FIRST_RETRY.saturating_mul(1 << n_failures.saturating_sub(1).min(16));
    let full = doubled.min(MAX_RETRY);
    full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::FailureKind;

    fn failure(kind: FailureKind, retry_after: Option<u64>) -> Failure {
        Failure {
            retry_after: retry_after.map(Duration::from_secs),
            ..Failure::new(kind, "x")
        }
    }

    #[test]
    fn retries_back_off_with_jitter_and_honour_retry_after() {
        let network = failure(FailureKind::Network, None);
        assert_eq!(retry_delay(1, &network, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(1, &network, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(4, &network, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(40, &network, 1.0), MAX_RETRY);
        assert!(retry_delay(40, &network, 0.5) >= MAX_RETRY / 2);
        let throttled = failure(FailureKind::Throttled, Some(7));
        assert_eq!(retry_delay(1, &throttled, 0.3), Duration::from_secs(7));
        let greedy = failure(FailureKind::Server, Some(86_400));
        assert_eq!(retry_delay(1, &greedy, 0.3), MAX_RETRY_AFTER);
        let creds = failure(FailureKind::Credentials, None);
        assert_eq!(retry_delay(9, &creds, 0.9), OPERATOR_RETRY);
        assert!((0.0..1.0).contains(&jitter()));
    }
}
