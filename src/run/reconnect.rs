//! What to do after a connection attempt failed: give up, resume from a time instead of a
//! refused id, or try again, and how long to wait first.
//!
//! Pure policy; `connection.rs` carries it out. Backoff itself is `client::Backoff`.

use std::time::Duration;

use crate::client;

/// The decision after a failed connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A problem a person must fix (404, 403, not an event stream) on the first connection.
    Fail,
    /// The server refused our stored `Last-Event-ID` (400): resume from the last archived
    /// `meta.dt` instead, which may leave a gap.
    FallBackToSince,
    /// Try again after the backoff delay.
    Retry,
}

/// Decides after `e`. `ever_connected`: a stream was open earlier in this process (then every
/// error is retried, since the configuration was shown to work). `resuming_by_id`: the request
/// carried a stored id.
pub fn after_connect_error(e: &client::Error, ever_connected: bool, resuming_by_id: bool) -> Next {
    // A refused stored position is not a configuration error, even at start.
    let refused_id = matches!(e, client::Error::Status { code: 400, .. }) && resuming_by_id;
    if refused_id {
        Next::FallBackToSince
    } else if !ever_connected && !e.is_retryable() {
        Next::Fail
    } else {
        Next::Retry
    }
}

/// The wait before the next attempt: the backoff delay, or longer if the server asked, but
/// never longer than `client::MAX_RETRY_AFTER`.
pub fn delay(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    let asked = retry_after.unwrap_or_default().min(client::MAX_RETRY_AFTER);
    backoff.max(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> client::Error {
        client::Error::Status {
            code,
            url: String::new(),
            body: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn first_connection_fails_on_configuration_errors_only() {
        assert_eq!(after_connect_error(&status(404), false, false), Next::Fail);
        assert_eq!(after_connect_error(&status(400), false, false), Next::Fail);
        assert_eq!(after_connect_error(&status(503), false, false), Next::Retry);
        assert_eq!(after_connect_error(&status(429), false, false), Next::Retry);
    }

    #[test]
    fn later_errors_are_retried_and_a_refused_id_falls_back() {
        assert_eq!(after_connect_error(&status(404), true, false), Next::Retry);
        assert_eq!(
            after_connect_error(&status(400), true, true),
            Next::FallBackToSince
        );
        assert_eq!(
            after_connect_error(&status(400), false, true),
            Next::FallBackToSince
        );
        assert_eq!(after_connect_error(&status(403), false, true), Next::Fail);
    }

    #[test]
    fn retry_after_only_lengthens_the_wait() {
        let second = Duration::from_secs(1);
        assert_eq!(delay(second, None), second);
        assert_eq!(delay(second, Some(3 * second)), 3 * second);
        assert_eq!(delay(2 * second, Some(second)), 2 * second);
        assert_eq!(delay(second, Some(Duration::MAX)), client::MAX_RETRY_AFTER);
    }
}
