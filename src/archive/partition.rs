//! Partition routing, decided without a disk: which open event file an event of the
//! partitioned layout goes into, which files its arrival completes (a day's end past the grace,
//! the cap of open files per stream), and the stream directory an event's `meta.stream` names.
//!
//! `Archive` carries the decision out (completing, opening, writing); nothing here touches a
//! file or reads the clock.

use time::{Date, OffsetDateTime};

/// A file for day D stays open for events dated D until an event of its stream dated at least
/// this long after D's end arrives; events of the live feed are out of order by seconds.
pub const STRAGGLER_GRACE_MS: i64 = 5 * 60 * 1000;
/// At most this many files of one stream are open at once (days that events jump between): a
/// bound on descriptors and compressor memory that real data, out of order by seconds, never
/// reaches.
pub const MAX_OPEN_PER_STREAM: usize = 4;

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

/// Routes an event of `stream` at `event_time` among the open files (`None` for one that is
/// not an event file of the partitioned layout, such as a flat file). A file of the stream for
/// an earlier day is completed once the event lies `STRAGGLER_GRACE_MS` past that day's end; the
/// event goes to its stream's open file of its own date, or to a new one, for which the oldest
/// open file of the stream is completed when the stream has `MAX_OPEN_PER_STREAM` open.
pub fn route(
    open: &[Option<OpenPartition<'_>>],
    stream: &str,
    event_time: OffsetDateTime,
) -> Route {
    let date = event_time.date();
    let event_ms = crate::times::unix_ms(event_time);
    let of_stream = |idx: usize| open[idx].filter(|p| p.stream == stream);
    let mut complete: Vec<usize> = (0..open.len())
        .filter(|&idx| {
            of_stream(idx).is_some_and(|p| {
                p.date < date && day_end_ms(p.date).saturating_add(STRAGGLER_GRACE_MS) <= event_ms
            })
        })
        .collect();
    let same_date = (0..open.len()).find(|&idx| of_stream(idx).is_some_and(|p| p.date == date));
    let target = match same_date {
        Some(idx) if !complete.contains(&idx) => {
            Target::Open(idx - complete.iter().filter(|&&c| c < idx).count())
        }
        _ => {
            let staying: Vec<usize> = (0..open.len())
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
        let route = route(&open, "recentchange", datetime!(2024-11-23 23:59 UTC));
        assert_eq!(route.complete, Vec::<usize>::new());
        assert_eq!(route.target, Target::Open(1));
    }

    #[test]
    fn the_day_stays_open_through_the_grace_and_closes_after_it() {
        let open = [at("recentchange", datetime!(2024-11-23 10:00 UTC))];
        let within = route(
            &open,
            "recentchange",
            datetime!(2024-11-24 00:04:59.999 UTC),
        );
        assert_eq!(within.complete, Vec::<usize>::new());
        assert_eq!(
            within.target,
            Target::New(time::macros::date!(2024 - 11 - 24))
        );
        let past = route(&open, "recentchange", datetime!(2024-11-24 00:05 UTC));
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
        let straggler = route(&open, "recentchange", datetime!(2024-11-23 23:59:58 UTC));
        assert_eq!(straggler.target, Target::Open(1));
        // Past the grace the day before closes, and the index of the next day's file shifts.
        let later = route(&open, "recentchange", datetime!(2024-11-24 00:06 UTC));
        assert_eq!(later.complete, vec![1]);
        assert_eq!(later.target, Target::Open(1));
    }

    #[test]
    fn a_straggler_after_the_grace_gets_a_new_file_of_its_own_day() {
        let open = [at("recentchange", datetime!(2024-11-24 00:00:01 UTC))];
        let route = route(&open, "recentchange", datetime!(2024-11-23 23:50 UTC));
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
        let route = route(&open, "recentchange", datetime!(2024-11-18 12:00 UTC));
        assert_eq!(route.complete, vec![1]);
        assert_eq!(
            route.target,
            Target::New(time::macros::date!(2024 - 11 - 18))
        );
    }

    #[test]
    fn files_that_are_not_partitions_are_never_completed() {
        let open = [None, at("recentchange", datetime!(2024-11-23 10:00 UTC))];
        let route = route(&open, "recentchange", datetime!(2024-12-01 00:00 UTC));
        assert_eq!(route.complete, vec![1]);
    }

    #[test]
    fn asked_streams_match_with_and_without_the_prefix() {
        assert!(is_asked_stream("mediawiki.recentchange", "recentchange"));
        assert!(is_asked_stream("recentchange", "recentchange"));
        assert!(!is_asked_stream("mediawiki.recentchange", "change"));
        assert!(!is_asked_stream("other.recentchange", "recentchange"));
    }
}
