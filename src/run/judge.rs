//! What becomes of one dispatched event: archived, rejected (with a reason), dropped as a
//! canary or a duplicate, or filtered out (with the filter).
//!
//! Pure: the event, the options and the recent ids in, a `Verdict` out. The session acts on
//! the verdict (writes, counts, logs); nothing here writes or counts.

use crate::event::{self, Meta, RecentIds, RejectReason};
use crate::filter::{self, Filter};
use crate::sse;

/// The fate of one event.
// A verdict lives on the stack for one event; boxing `Meta` would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// A JSON object to archive; `key` is its `meta.id` key for the duplicate window.
    Archive { meta: Meta<'a>, key: Option<u128> },
    /// Goes to the rejects file.
    Reject(RejectReason),
    /// A canary (heartbeat) event, dropped unless `--keep-canary`.
    Canary,
    /// Left out by a filter.
    Filtered(filter::Reason),
    /// Its `meta.id` was archived already (a resend after a resume).
    Duplicate,
}

/// Judges `event`. Rejects come first (what cannot be read cannot be a canary or a duplicate),
/// then canaries, then filters, then the duplicate check.
pub fn judge<'a>(
    event: &sse::Event<'a>,
    keep_canary: bool,
    filter: &Filter,
    recent_ids: &RecentIds,
) -> Verdict<'a> {
    if event.oversize {
        return Verdict::Reject(RejectReason::Oversize);
    }
    if event.event_type != "message" {
        return Verdict::Reject(RejectReason::UnexpectedType);
    }
    let meta = match event::inspect(event.data) {
        Ok(meta) => meta,
        Err(reason) => return Verdict::Reject(reason),
    };
    if meta.is_canary() && !keep_canary {
        return Verdict::Canary;
    }
    if let Err(reason) = filter.check(event.data, &meta) {
        return Verdict::Filtered(reason);
    }
    let key = meta.id.as_deref().map(event::id_key);
    if key.is_some_and(|key| recent_ids.contains_key(key)) {
        return Verdict::Duplicate;
    }
    Verdict::Archive { meta, key }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4a1d3c2e-0000-4000-8000-000000000001";

    fn message(data: &str) -> sse::Event<'_> {
        sse::Event {
            event_type: "message",
            data,
            id: "[1]",
            oversize: false,
        }
    }

    fn edit(domain: &str) -> String {
        format!(r#"{{"meta":{{"id":"{ID}","domain":"{domain}"}},"wiki":"enwiki","type":"edit"}}"#)
    }

    fn verdict(event: &sse::Event<'_>, filter: &Filter, recent: &RecentIds) -> String {
        format!("{:?}", judge(event, false, filter, recent))
    }

    #[test]
    fn every_verdict() {
        let none = Filter::default();
        let recent = RecentIds::new(8);
        let data = edit("en.wikipedia.org");
        match judge(&message(&data), false, &none, &recent) {
            Verdict::Archive { meta, key } => {
                assert_eq!(meta.id.as_deref(), Some(ID));
                assert_eq!(key, Some(event::id_key(ID)));
            }
            other => panic!("{other:?}"),
        }
        let oversize = sse::Event {
            oversize: true,
            ..message(&data)
        };
        assert_eq!(verdict(&oversize, &none, &recent), "Reject(Oversize)");
        let error = sse::Event {
            event_type: "error",
            ..message(&data)
        };
        assert_eq!(verdict(&error, &none, &recent), "Reject(UnexpectedType)");
        assert_eq!(
            verdict(&message("{nope"), &none, &recent),
            "Reject(InvalidJson)"
        );
        assert_eq!(
            verdict(&message("[1]"), &none, &recent),
            "Reject(NotAnObject)"
        );
        let canary = edit("canary");
        assert_eq!(verdict(&message(&canary), &none, &recent), "Canary");
        assert!(matches!(
            judge(&message(&canary), true, &none, &recent),
            Verdict::Archive { .. }
        ));
        let dewiki_only = Filter {
            wikis: vec!["dewiki".into()],
            ..Filter::default()
        };
        assert_eq!(
            verdict(&message(&data), &dewiki_only, &recent),
            "Filtered(Wiki)"
        );
        let mut seen = RecentIds::new(8);
        seen.insert_key(event::id_key(ID));
        assert_eq!(verdict(&message(&data), &none, &seen), "Duplicate");
    }

    #[test]
    fn order_of_checks() {
        // A canary that a filter would leave out counts as a canary; a duplicate that a
        // filter leaves out counts as filtered; rejects win over everything.
        let mut seen = RecentIds::new(8);
        seen.insert_key(event::id_key(ID));
        let dewiki_only = Filter {
            wikis: vec!["dewiki".into()],
            ..Filter::default()
        };
        let canary = edit("canary");
        assert_eq!(verdict(&message(&canary), &dewiki_only, &seen), "Canary");
        let data = edit("en.wikipedia.org");
        assert_eq!(
            verdict(&message(&data), &dewiki_only, &seen),
            "Filtered(Wiki)"
        );
        let oversize = sse::Event {
            oversize: true,
            ..message(&canary)
        };
        assert_eq!(verdict(&oversize, &dewiki_only, &seen), "Reject(Oversize)");
    }
}
