//! When to complete the open file: a pure function of the policy, the file's state and the time.
//!
//! No I/O and no clock: `now` is passed in, so tests can drive time. It does not complete files;
//! `archive/mod.rs` does that when this says so.

use time::{Duration, OffsetDateTime};

/// The configured rotation triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Complete at this minute of every UTC hour (0-59); `None` disables.
    pub minute: Option<u8>,
    /// Complete after this many events; `None` disables.
    pub max_events: Option<u64>,
    /// Complete after this many compressed bytes; `None` disables.
    pub max_bytes: Option<u64>,
}

/// Why a file was completed (the label set lives with the other metric labels).
pub use crate::labels::RotationReason;

/// The first rotation minute strictly after `opened_at`, if minute rotation is on.
pub fn next_boundary(minute: Option<u8>, opened_at: OffsetDateTime) -> Option<OffsetDateTime> {
    let minute = minute?;
    let utc = opened_at.to_offset(time::UtcOffset::UTC);
    let hour_start = utc
        .replace_minute(0)
        .ok()?
        .replace_second(0)
        .ok()?
        .replace_nanosecond(0)
        .ok()?;
    let candidate = hour_start + Duration::minutes(i64::from(minute));
    Some(if candidate > utc {
        candidate
    } else {
        candidate + Duration::HOUR
    })
}

/// Whether the open file must be completed before the next event is written.
pub fn due(
    policy: &Policy,
    opened_at: OffsetDateTime,
    n_events: u64,
    n_bytes: u64,
    now: OffsetDateTime,
) -> Option<RotationReason> {
    if next_boundary(policy.minute, opened_at).is_some_and(|boundary| now >= boundary) {
        return Some(RotationReason::Minute);
    }
    if policy.max_events.is_some_and(|max| n_events >= max) {
        return Some(RotationReason::Events);
    }
    if policy.max_bytes.is_some_and(|max| n_bytes >= max) {
        return Some(RotationReason::Bytes);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const HOURLY_AT_5: Policy = Policy {
        minute: Some(5),
        max_events: None,
        max_bytes: None,
    };

    #[test]
    fn minute_boundary_is_the_next_one_strictly_after_opening() {
        assert_eq!(
            next_boundary(Some(5), datetime!(2025-01-31 12:04:59 UTC)),
            Some(datetime!(2025-01-31 12:05:00 UTC))
        );
        assert_eq!(
            next_boundary(Some(5), datetime!(2025-01-31 12:05:00 UTC)),
            Some(datetime!(2025-01-31 13:05:00 UTC))
        );
        assert_eq!(
            next_boundary(Some(5), datetime!(2025-01-31 23:59:00 UTC)),
            Some(datetime!(2025-02-01 00:05:00 UTC))
        );
        assert_eq!(
            next_boundary(Some(0), datetime!(2025-01-31 12:00:01 UTC)),
            Some(datetime!(2025-01-31 13:00:00 UTC))
        );
        assert_eq!(
            next_boundary(None, datetime!(2025-01-31 12:00:01 UTC)),
            None
        );
        // Offsets do not matter: boundaries are in UTC.
        assert_eq!(
            next_boundary(Some(5), datetime!(2025-01-31 13:04:00 +01:00)),
            Some(datetime!(2025-01-31 12:05:00 UTC))
        );
    }

    #[test]
    fn due_by_minute_only_after_crossing() {
        let opened = datetime!(2025-01-31 12:04:00 UTC);
        assert_eq!(
            due(
                &HOURLY_AT_5,
                opened,
                10,
                10,
                datetime!(2025-01-31 12:04:59.999 UTC)
            ),
            None
        );
        assert_eq!(
            due(
                &HOURLY_AT_5,
                opened,
                10,
                10,
                datetime!(2025-01-31 12:05:00 UTC)
            ),
            Some(RotationReason::Minute)
        );
        // A file opened just after the boundary lives until the next hour's.
        let opened = datetime!(2025-01-31 12:05:01 UTC);
        assert_eq!(
            due(
                &HOURLY_AT_5,
                opened,
                10,
                10,
                datetime!(2025-01-31 13:04:00 UTC)
            ),
            None
        );
        assert_eq!(
            due(
                &HOURLY_AT_5,
                opened,
                10,
                10,
                datetime!(2025-01-31 13:05:00 UTC)
            ),
            Some(RotationReason::Minute)
        );
        // After a long downtime, a file from yesterday is due at once.
        assert_eq!(
            due(
                &HOURLY_AT_5,
                opened,
                0,
                0,
                datetime!(2025-02-01 09:00:00 UTC)
            ),
            Some(RotationReason::Minute)
        );
    }

    #[test]
    fn due_by_count_and_bytes() {
        let policy = Policy {
            minute: None,
            max_events: Some(3),
            max_bytes: Some(1000),
        };
        let t = datetime!(2025-01-31 12:00:00 UTC);
        assert_eq!(due(&policy, t, 2, 999, t), None);
        assert_eq!(due(&policy, t, 3, 0, t), Some(RotationReason::Events));
        assert_eq!(due(&policy, t, 0, 1000, t), Some(RotationReason::Bytes));
    }
}
