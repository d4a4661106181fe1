//! Partition routing, decided without a disk: where an event of the partitioned layout belongs
//! (`place`: the stream directory its `meta.stream` names, under the name rule, and the date of
//! its `meta.dt`, within bounds), which open event file it goes into, and which files its
//! arrival completes (a day's end past the grace, the cap of open files per stream).
//!
//! Everything here comes from the wire: a name becomes a directory only when it passes
//! `is_safe_stream_name`, a date only within `EARLIEST_DT_MS` and `MAX_DT_AHEAD_MS`.
//! `Archive` carries the decisions out (completing, opening, writing); nothing here touches a
//! file or reads the clock.

use time::{Date, OffsetDateTime};

use crate::event::RejectReason;

/// A file for day D stays open for events dated D until an event of its stream dated at least
/// this long after D's end arrives; events of the live feed are out of order by seconds.
pub const STRAGGLER_GRACE_MS: i64 = 5 * 60 * 1000;
/// At most this many files of one stream are open at once (days that events jump between): a
/// bound on descriptors and compressor memory that real data, out of order by seconds, never
/// reaches.
pub const MAX_OPEN_PER_STREAM: usize = 4;

/// The longest stream name that becomes a directory. EventStreams' names are a few dozen bytes
/// (`mediawiki.page_change.v1`); with this bound every file name stays far below the 255 bytes
/// file systems allow (`STREAM-YYYYMMDDTHHMMSSZ-NNNNNN.ndjson.gz.part`).
pub const MAX_STREAM_NAME_BYTES: usize = 100;
/// Endings of the archive's own files: a stream directory never ends in one, so that no stream
/// directory can be taken for, or stand in the way of, a file (`checkpoint.json`, `….tmp`).
const RESERVED_SUFFIXES: [&str; 5] = [".json", ".tmp", ".gz", ".part", ".ready"];
/// The earliest `meta.dt` taken as an event's date, 2001-01-01 (Wikipedia began on the 15th):
/// anything before is not a date of this feed.
pub const EARLIEST_DT_MS: i64 = 978_307_200_000;
/// How far ahead of its arrival an event's `meta.dt` may lie. A day covers a board whose clock
/// is hours off (booted without its time); further ahead, the date is not trusted, and such an
/// event would complete the open files of its stream.
pub const MAX_DT_AHEAD_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether a stream name may become a directory: 1 to `MAX_STREAM_NAME_BYTES` bytes of lower
/// case ASCII letters, digits, `.`, `-` and `_`, starting with a letter or digit, and not ending
/// like one of the archive's files. Matched as it is (case-sensitively), as EventStreams does.
/// It excludes `.`, `..`, names with `/`, NUL or control characters, names of the control files
/// and directories (`_checkpoint.json`, `.lock`, `_rejects`, `_damaged`), and two names that
/// a case-insensitive file system would take for one.
pub fn is_safe_stream_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b);
    !bytes.is_empty()
        && bytes.len() <= MAX_STREAM_NAME_BYTES
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(allowed)
        && !RESERVED_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// What an event says of one part of its place (`meta.stream` or `meta.dt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Absent,
    Text(&'a str),
    /// There, but not a string.
    Unreadable,
}

impl<'a> Field<'a> {
    /// The field whose text is `text`, or that is there but `unreadable`.
    pub fn of(text: Option<&'a str>, unreadable: bool) -> Field<'a> {
        match (text, unreadable) {
            (_, true) => Field::Unreadable,
            (Some(text), false) => Field::Text(text),
            (None, false) => Field::Absent,
        }
    }
}

/// What an event says of its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub stream: Field<'a>,
    pub dt: Field<'a>,
    /// `dt` in Unix ms, when it is text that reads as RFC 3339: the caller parses it, once.
    pub dt_ms: Option<i64>,
}

/// Where an event belongs in the partitioned layout: its stream directory and the time that
/// dates it, or the reason it goes to the rejects instead.
///
/// The directory is the asked-for stream its `meta.stream` names (`recentchange` for
/// `mediawiki.recentchange`), else the name itself when it is safe (`is_safe_stream_name`);
/// without a `meta.stream`, the first asked-for stream. The date is that of `meta.dt`, which
/// must be RFC 3339 between `EARLIEST_DT_MS` and `MAX_DT_AHEAD_MS` after `now`: an event
/// without one cannot be put in a date partition.
pub fn place<'a>(
    place: &Place<'a>,
    asked: &'a [String],
    now: OffsetDateTime,
) -> Result<(&'a str, OffsetDateTime), RejectReason> {
    let stream = match place.stream {
        Field::Text(name) => asked
            .iter()
            .find(|asked| is_asked_stream(name, asked))
            .map_or(name, String::as_str),
        Field::Absent => asked.first().map_or("", String::as_str),
        Field::Unreadable => return Err(RejectReason::BadStream),
    };
    if !is_safe_stream_name(stream) {
        return Err(RejectReason::BadStream);
    }
    let latest = crate::times::unix_ms(now).saturating_add(MAX_DT_AHEAD_MS);
    let ms = match place.dt {
        Field::Text(_) => place
            .dt_ms
            .filter(|ms| (EARLIEST_DT_MS..=latest).contains(ms)),
        Field::Absent | Field::Unreadable => None,
    };
    let time = ms.and_then(|ms| OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok());
    Ok((stream, time.ok_or(RejectReason::BadDate)?))
}

/// The partition of one open event file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPartition<'a> {
    pub stream: &'a str,
    pub date: Date,
    pub opened_at: OffsetDateTime,
}

/// Where an event goes, and what its arrival completes first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Indices (into the slice given to `route`) of the files to complete before the event is
    /// written, in ascending order.
    pub complete: Vec<usize>,
    pub target: Target,
}

/// The file an event is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An open file: its index once the files in `Route::complete` are taken out.
    Open(usize),
    /// A new file in the event's date.
    New(Date),
}

/// Routes an event of `stream` at `event_time` among the `n_open` open files, `open(idx)` the
/// partition of each (`None` for one that is not an event file of the partitioned layout, such
/// as a flat file); it asks instead of taking a slice so that the caller, on every event, need
/// not collect one. A file of the stream for
/// an earlier day is completed once the event lies `STRAGGLER_GRACE_MS` past that day's end; the
/// event goes to its stream's open file of its own date, or to a new one, for which the oldest
/// open file of the stream is completed when the stream has `MAX_OPEN_PER_STREAM` open.
pub fn route<'a>(
    n_open: usize,
    open: impl Fn(usize) -> Option<OpenPartition<'a>>,
    stream: &str,
    event_time: OffsetDateTime,
) -> Route {
    let date = event_time.date();
    let event_ms = crate::times::unix_ms(event_time);
    let of_stream = |idx: usize| open(idx).filter(|p| p.stream == stream);
    let mut complete: Vec<usize> = (0..n_open)
        .filter(|&idx| {
            of_stream(idx).is_some_and(|p| {
                p.date < date && day_end_ms(p.date).saturating_add(STRAGGLER_GRACE_MS) <= event_ms
            })
        })
        .collect();
    let same_date = (0..n_open).find(|&idx| of_stream(idx).is_some_and(|p| p.date == date));
    let target = match same_date {
        Some(idx) if !complete.contains(&idx) => {
            Target::Open(idx - complete.iter().filter(|&&c| c < idx).count())
        }
        _ => {
            let staying: Vec<usize> = (0..n_open)
                .filter(|idx| of_stream(*idx).is_some() && !complete.contains(idx))
                .collect();
            if staying.len() >= MAX_OPEN_PER_STREAM {
                let oldest = staying
                    .into_iter()
                    .min_by_key(|&idx| of_stream(idx).map(|p| p.opened_at))
                    .expect("the stream has open files");
                complete.push(oldest);
                complete.sort_unstable();
            }
            Target::New(date)
        }
    };
    Route { complete, target }
}

/// The end of UTC day `date` (the next midnight), in Unix ms.
pub fn day_end_ms(date: Date) -> i64 {
    let next = date.next_day().unwrap_or(date);
    next.midnight()
        .assume_utc()
        .unix_timestamp()
        .saturating_mul(1000)
}

/// Whether an event's `meta.stream` is the asked-for stream `asked`: the URL names streams
/// without the `mediawiki.` prefix that `meta.stream` carries (`recentchange` is
/// `mediawiki.recentchange`).
pub fn is_asked_stream(stream: &str, asked: &str) -> bool {
    stream == asked || stream.strip_prefix("mediawiki.") == Some(asked)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn route_in(
        open: &[Option<OpenPartition<'_>>],
        stream: &str,
        event_time: OffsetDateTime,
    ) -> Route {
        route(open.len(), |idx| open[idx], stream, event_time)
    }

    fn at(stream: &str, opened_at: OffsetDateTime) -> Option<OpenPartition<'_>> {
        Some(OpenPartition {
            stream,
            date: opened_at.date(),
            opened_at,
        })
    }

    #[test]
    fn an_event_of_an_open_day_goes_to_its_file() {
        let open = [
            at("page-create", datetime!(2024-11-23 10:00 UTC)),
            at("recentchange", datetime!(2024-11-23 10:00 UTC)),
        ];
        let route = route_in(&open, "recentchange", datetime!(2024-11-23 23:59 UTC));
        assert_eq!(route.complete, Vec::<usize>::new());
        assert_eq!(route.target, Target::Open(1));
    }

    #[test]
    fn the_day_stays_open_through_the_grace_and_closes_after_it() {
        let open = [at("recentchange", datetime!(2024-11-23 10:00 UTC))];
        let within = route_in(
            &open,
            "recentchange",
            datetime!(2024-11-24 00:04:59.999 UTC),
        );
        assert_eq!(within.complete, Vec::<usize>::new());
        assert_eq!(
            within.target,
            Target::New(time::macros::date!(2024 - 11 - 24))
        );
        let past = route_in(&open, "recentchange", datetime!(2024-11-24 00:05 UTC));
        assert_eq!(past.complete, vec![0]);
        assert_eq!(
            past.target,
            Target::New(time::macros::date!(2024 - 11 - 24))
        );
    }

    #[test]
    fn a_straggler_returns_to_its_open_day_and_other_streams_are_left_alone() {
        let open = [
            at("page-create", datetime!(2024-11-23 10:00 UTC)),
            at("recentchange", datetime!(2024-11-23 10:00 UTC)),
            at("recentchange", datetime!(2024-11-24 00:00:01 UTC)),
        ];
        let straggler = route_in(&open, "recentchange", datetime!(2024-11-23 23:59:58 UTC));
        assert_eq!(straggler.target, Target::Open(1));
        // Past the grace the day before closes, and the index of the next day's file shifts.
        let later = route_in(&open, "recentchange", datetime!(2024-11-24 00:06 UTC));
        assert_eq!(later.complete, vec![1]);
        assert_eq!(later.target, Target::Open(1));
    }

    #[test]
    fn a_straggler_after_the_grace_gets_a_new_file_of_its_own_day() {
        let open = [at("recentchange", datetime!(2024-11-24 00:00:01 UTC))];
        let route = route_in(&open, "recentchange", datetime!(2024-11-23 23:50 UTC));
        assert_eq!(route.complete, Vec::<usize>::new());
        assert_eq!(
            route.target,
            Target::New(time::macros::date!(2024 - 11 - 23))
        );
    }

    #[test]
    fn the_cap_completes_the_oldest_file_of_the_stream() {
        // Four days open, each younger than the next one's grace, because events jump back.
        let open = [
            at("recentchange", datetime!(2024-11-20 12:00 UTC)),
            at("recentchange", datetime!(2024-11-19 12:00 UTC)),
            at("page-create", datetime!(2024-11-01 12:00 UTC)),
            at("recentchange", datetime!(2024-11-21 12:00 UTC)),
            None,
            at("recentchange", datetime!(2024-11-22 12:00 UTC)),
        ];
        let route = route_in(&open, "recentchange", datetime!(2024-11-18 12:00 UTC));
        assert_eq!(route.complete, vec![1]);
        assert_eq!(
            route.target,
            Target::New(time::macros::date!(2024 - 11 - 18))
        );
    }

    #[test]
    fn files_that_are_not_partitions_are_never_completed() {
        let open = [None, at("recentchange", datetime!(2024-11-23 10:00 UTC))];
        let route = route_in(&open, "recentchange", datetime!(2024-12-01 00:00 UTC));
        assert_eq!(route.complete, vec![1]);
    }

    #[test]
    fn real_stream_names_are_safe_and_hostile_ones_are_not() {
        for name in [
            "recentchange",
            "page-create",
            "mediawiki.page_change.v1",
            "mediawiki.revision-create",
            "0x",
        ] {
            assert!(is_safe_stream_name(name), "{name}");
        }
        let long = "a".repeat(MAX_STREAM_NAME_BYTES + 1);
        for name in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "_checkpoint.json",
            ".lock",
            "_rejects",
            "_damaged",
            "checkpoint.json",
            "x.tmp",
            "a\0b",
            "a\nb",
            "Recentchange",
            "-x",
            "date=x",
            &long,
        ] {
            assert!(!is_safe_stream_name(name), "{name:?}");
        }
        assert!(is_safe_stream_name(&long[1..]));
    }

    #[test]
    fn places_come_from_safe_names_and_readable_dates_only() {
        let asked = vec!["recentchange".to_string()];
        let now = datetime!(2024-11-23 12:00 UTC);
        let at = |stream: Field<'static>, dt: Field<'static>| {
            let dt_ms = match dt {
                Field::Text(text) => crate::times::parse_rfc3339_ms(text),
                _ => None,
            };
            place(&Place { stream, dt, dt_ms }, &asked, now).map(|(s, t)| (s.to_string(), t))
        };
        let dt = Field::Text("2024-11-23T11:59:59Z");
        assert_eq!(
            at(Field::Text("mediawiki.recentchange"), dt),
            Ok(("recentchange".into(), datetime!(2024-11-23 11:59:59 UTC)))
        );
        assert_eq!(
            at(Field::Absent, dt).map(|p| p.0),
            Ok("recentchange".into())
        );
        assert_eq!(
            at(Field::Text("mediawiki.page-create"), dt).map(|p| p.0),
            Ok("mediawiki.page-create".into())
        );
        for stream in [
            Field::Text(".."),
            Field::Text("_rejects"),
            Field::Unreadable,
        ] {
            assert_eq!(at(stream, dt), Err(RejectReason::BadStream), "{stream:?}");
        }
        for date in [
            Field::Absent,
            Field::Unreadable,
            Field::Text(""),
            Field::Text("2024-02-30T00:00:00Z"),
            Field::Text("2024-11-23T25:00:00Z"),
            Field::Text("+275760-09-13T00:00:00Z"),
            Field::Text("1999-12-31T23:59:59Z"),
            Field::Text("2024-11-24T12:00:00.001Z"),
            Field::Text("9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(
                at(Field::Text("recentchange"), date),
                Err(RejectReason::BadDate),
                "{date:?}"
            );
        }
        assert!(
            at(
                Field::Text("recentchange"),
                Field::Text("2024-11-24T12:00:00Z")
            )
            .is_ok()
        );
        let none: Vec<String> = Vec::new();
        let unasked = place(
            &Place {
                stream: Field::Absent,
                dt,
                dt_ms: Some(1_732_363_199_000),
            },
            &none,
            now,
        );
        assert_eq!(unasked, Err(RejectReason::BadStream));
    }

    #[test]
    fn asked_streams_match_with_and_without_the_prefix() {
        assert!(is_asked_stream("mediawiki.recentchange", "recentchange"));
        assert!(is_asked_stream("recentchange", "recentchange"));
        assert!(!is_asked_stream("mediawiki.recentchange", "change"));
        assert!(!is_asked_stream("other.recentchange", "recentchange"));
    }
}
