//! Time helpers shared by every module: Unix milliseconds, RFC 3339 in and out, and the compact
//! UTC stamp used in file names.
//!
//! Pure conversions with no clock: callers pass the time in. It belongs to the pure core with
//! `sse`, `event` and `filter`, and imports nothing of ours.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Milliseconds since the Unix epoch; saturates far outside any date the archive can meet.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// An RFC 3339 date-time as Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(unix_ms)
}

/// An RFC 3339 date-time.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// A time as the user writes it (`--since`, `since=`, `--from`): milliseconds since the epoch,
/// or an RFC 3339 date-time.
pub fn parse_ms_or_rfc3339(text: &str) -> Result<i64, TimeError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| TimeError::TooLarge);
    }
    parse_rfc3339_ms(text).ok_or(TimeError::Malformed)
}

/// Why `parse_ms_or_rfc3339` refused its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Digits only, but beyond what milliseconds since the epoch can be.
    TooLarge,
    /// Neither digits nor RFC 3339.
    Malformed,
}

/// RFC 3339 (`2025-01-31T12:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("formatting a UTC time as RFC 3339 cannot fail")
}

/// RFC 3339 for Unix milliseconds; empty when out of range.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `20250131T120000Z`: sorts as text in time order and is safe in every file system.
pub fn compact_utc(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("formatting a UTC time with a fixed description cannot fail")
}

/// `12:05:03Z` for Unix seconds (the seconds themselves when out of range).
pub fn clock_time(unix_s: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(format_description!("[hour]:[minute]:[second]Z"))
                .ok()
        })
        .unwrap_or_else(|| unix_s.to_string())
}

/// `2025-01-31T12:00:00.123Z`: the log line stamp.
pub fn log_stamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn milliseconds_and_rfc3339_agree() {
        let t = datetime!(2024-11-23 09:00:00.123 UTC);
        assert_eq!(unix_ms(t), 1_732_352_400_123);
        assert_eq!(
            parse_rfc3339_ms("2024-11-23T09:00:00.123Z"),
            Some(1_732_352_400_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-11-23T10:00:00+01:00"),
            Some(1_732_352_400_000)
        );
        assert_eq!(rfc3339_ms(1_732_352_400_000), "2024-11-23T09:00:00Z");
        assert_eq!(
            rfc3339(datetime!(2025-01-31 12:00:00 UTC)),
            "2025-01-31T12:00:00Z"
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn user_times_take_ms_or_rfc3339() {
        assert_eq!(parse_ms_or_rfc3339("1732352400123"), Ok(1_732_352_400_123));
        assert_eq!(
            parse_ms_or_rfc3339("2024-11-23T09:00:00Z"),
            Ok(1_732_352_400_000)
        );
        assert_eq!(
            parse_ms_or_rfc3339("99999999999999999999"),
            Err(TimeError::TooLarge)
        );
        assert_eq!(parse_ms_or_rfc3339(""), Err(TimeError::Malformed));
        assert_eq!(
            parse_ms_or_rfc3339("last tuesday"),
            Err(TimeError::Malformed)
        );
    }

    #[test]
    fn stamps() {
        let t = datetime!(2025-01-31 12:05:03.5 UTC);
        assert_eq!(compact_utc(t), "20250131T120503Z");
        assert_eq!(clock_time(1_738_325_103), "12:05:03Z");
        assert_eq!(log_stamp(t), "2025-01-31T12:05:03.500Z");
    }
}
