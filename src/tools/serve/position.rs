//! EventStreams ids: the `Last-Event-ID` a client sends, where each topic-partition resumes, and
//! the id line of each event sent (`Positions`).
//!
//! Pure: ids and events in, decisions and id text out.

use super::source::ArchivedEvent;
use crate::archive::seek::ORDER_SLACK_MS;

/// A position in one topic-partition, as in EventStreams ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    /// The last offset received: resume after it.
    Offset(i64),
    /// A time in milliseconds: resume at the first event at or after it (Kafka's seek by time,
    /// which sends events of that very millisecond again).
    Timestamp(i64),
}

/// One entry of an id: `{"topic":…,"partition":…,"offset"|"timestamp":…}`. A missing topic
/// applies to every topic (older clients store `[{"offset":N}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) topic: Option<String>,
    pub(super) partition: i64,
    pub(super) mark: Mark,
}

/// The entries of a `Last-Event-ID`; None when it is not an EventStreams id.
pub(super) fn parse_last_event_id(id: &str) -> Option<Vec<Entry>> {
    let value: serde_json::Value = serde_json::from_str(id).ok()?;
    let entries: Vec<Entry> = value
        .as_array()?
        .iter()
        .map(|entry| {
            // A position that is there but not an integer that fits is no id of ours: it must
            // not silently mean "from the start".
            let number = |key: &str| match &entry[key] {
                serde_json::Value::Null => Ok(None),
                value => value.as_i64().map(Some).ok_or(()),
            };
            let mark = match (number("offset")?, number("timestamp")?) {
                // Kafka's "no position yet": this entry does not constrain anything.
                (Some(offset), _) if offset >= 0 => Some(Mark::Offset(offset)),
                (_, Some(ms)) => Some(Mark::Timestamp(ms)),
                _ => None,
            };
            Ok(mark.map(|mark| Entry {
                topic: entry["topic"].as_str().map(String::from),
                partition: entry["partition"].as_i64().unwrap_or(0),
                mark,
            }))
        })
        .collect::<Result<Vec<Option<Entry>>, ()>>()
        .ok()?
        .into_iter()
        .flatten()
        .collect();
    (!value.as_array()?.is_empty()).then_some(entries)
}

/// What the ids `serve` sends mark each topic-partition's position with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdMarks {
    /// `meta.dt` in ms, as EventStreams does today.
    #[default]
    Timestamps,
    /// Kafka offsets (`meta.offset`, else a count per topic).
    Offsets,
}

/// Where a connection starts, per topic-partition, and the positions its ids report.
pub(super) struct Positions {
    resume: Vec<Entry>,
    since_ms: Option<i64>,
    /// The latest position per topic-partition, in first-seen order, for the `id:` lines.
    latest: Vec<(String, i64, Mark)>,
    /// Topic-partitions that reached their start position: everything after it is sent.
    started: Vec<(String, i64)>,
}

impl Positions {
    pub(super) fn new(resume: Vec<Entry>, since_ms: Option<i64>) -> Positions {
        let latest = resume
            .iter()
            .filter_map(|e| Some((e.topic.clone()?, e.partition, e.mark)))
            .collect();
        Positions {
            resume,
            since_ms,
            latest,
            started: Vec::new(),
        }
    }

    /// Whether the connection starts at the beginning (no id, no `since`): nothing to seek.
    pub(super) fn is_start(&self) -> bool {
        self.resume.is_empty() && self.since_ms.is_none()
    }

    /// Whether reading may start after `event`, skipping it and all before it: it lies before
    /// the start of every topic-partition, by its own offset or, for times (a timestamp mark,
    /// `since`), by `ORDER_SLACK_MS` more, as events are not in `meta.dt` order. An offset of
    /// another topic says nothing about this event, and neither does a topic without a mark
    /// (it starts at its beginning): then nothing is skipped.
    pub(super) fn seek_past(&self, event: &ArchivedEvent) -> bool {
        let applies = |e: &Entry| {
            e.partition == event.partition && e.topic.as_deref().is_none_or(|t| t == event.topic)
        };
        let has_own = self.resume.iter().any(applies);
        if !has_own && self.since_ms.is_none() {
            return false;
        }
        let early =
            |ms: i64| event.dt_ms != i64::MIN && event.dt_ms < ms.saturating_sub(ORDER_SLACK_MS);
        self.resume.iter().all(|e| match e.mark {
            Mark::Offset(offset) => applies(e) && event.has_offset && event.offset <= offset,
            Mark::Timestamp(ms) => early(ms),
        }) && self.since_ms.is_none_or(early)
    }

    /// Whether `event` comes before the start position. Like Kafka's seek, this is per
    /// topic-partition and in log order: the first event at or after the mark (a timestamp at
    /// or after it, an offset after it) starts the partition, and every later event of it is
    /// sent, even one whose `meta.dt` is earlier. A seek is never a filter.
    pub(super) fn skips(&mut self, event: &ArchivedEvent) -> bool {
        let key = (event.topic.as_str(), event.partition);
        if self.started.iter().any(|(t, p)| (t.as_str(), *p) == key) {
            return false;
        }
        let entry = self.resume.iter().find(|e| {
            e.partition == event.partition && e.topic.as_deref().is_none_or(|t| t == event.topic)
        });
        let before = match entry.map(|e| e.mark) {
            Some(Mark::Offset(offset)) => event.offset <= offset,
            Some(Mark::Timestamp(ms)) => event.dt_ms < ms,
            None => self.since_ms.is_some_and(|since| event.dt_ms < since),
        };
        if !before {
            self.started.push((event.topic.clone(), event.partition));
        }
        before
    }

    /// Records `event` as sent and returns its id line's JSON (`record`, then `id`).
    pub(super) fn id_after(&mut self, event: &ArchivedEvent, marks: IdMarks) -> String {
        self.record(event, marks);
        self.id()
    }

    /// Records `event` as passed: sent, or left out by a filter.
    pub(super) fn record(&mut self, event: &ArchivedEvent, marks: IdMarks) {
        let mark = match marks {
            IdMarks::Timestamps => Mark::Timestamp(event.dt_ms),
            IdMarks::Offsets => Mark::Offset(event.offset),
        };
        match self
            .latest
            .iter_mut()
            .find(|(topic, partition, _)| *topic == event.topic && *partition == event.partition)
        {
            // A timestamp mark keeps the highest one sent: a seek to it lands at or before the
            // last event sent (the one that had it was sent), so nothing after is lost, and
            // an older event last does not send back seconds of events again.
            Some(entry) => {
                entry.2 = match (entry.2, mark) {
                    (Mark::Timestamp(old), Mark::Timestamp(new)) => Mark::Timestamp(old.max(new)),
                    _ => mark,
                }
            }
            None => self
                .latest
                .push((event.topic.clone(), event.partition, mark)),
        }
    }

    /// The id line's JSON of what was passed: per topic-partition, the offset of the last
    /// event, or the highest timestamp so far.
    pub(super) fn id(&self) -> String {
        // Written by hand to keep EventStreams' key order: topic, partition, position.
        let entries: Vec<String> = self
            .latest
            .iter()
            .map(|(topic, partition, mark)| {
                let (key, value) = match mark {
                    Mark::Offset(offset) => ("offset", offset),
                    Mark::Timestamp(ms) => ("timestamp", ms),
                };
                format!(
                    "{{\"topic\":{},\"partition\":{partition},\"{key}\":{value}}}",
                    serde_json::Value::from(topic.as_str())
                )
            })
            .collect();
        format!("[{}]", entries.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str, offset: i64, dt_ms: i64) -> ArchivedEvent {
        ArchivedEvent {
            data: b"{}".to_vec(),
            dt_ms,
            stream: None,
            topic: topic.to_string(),
            partition: 0,
            offset,
            has_offset: true,
        }
    }

    #[test]
    fn seeks_skip_only_what_lies_before_every_start() {
        let min = 60_000;
        let id = |json: &str| parse_last_event_id(json).expect("entries");
        let at = Positions::new(
            id(r#"[{"topic":"a","partition":0,"timestamp":6000000}]"#),
            None,
        );
        assert!(at.seek_past(&event("a", 0, 6_000_000 - 5 * min - 1)));
        // Within the slack: events this close may come after later ones.
        assert!(!at.seek_past(&event("a", 0, 6_000_000 - 5 * min)));
        // A topic without a mark starts at its beginning.
        assert!(!at.seek_past(&event("b", 0, 0)));
        let offsets = Positions::new(id(r#"[{"topic":"a","partition":0,"offset":50}]"#), None);
        assert!(offsets.seek_past(&event("a", 50, 0)));
        assert!(!offsets.seek_past(&event("a", 51, 0)));
        let mut counted = event("a", 10, 0);
        counted.has_offset = false;
        assert!(
            !offsets.seek_past(&counted),
            "a counted offset is no position"
        );
        let since = Positions::new(Vec::new(), Some(10 * min));
        assert!(since.seek_past(&event("any", 0, 4 * min)));
        assert!(!since.seek_past(&event("any", 0, 6 * min)));
        assert!(!Positions::new(Vec::new(), None).seek_past(&event("a", 0, 0)));
    }

    #[test]
    fn resume_per_topic_partition() {
        let id = r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1000},{"topic":"codfw.rc","partition":0,"offset":7},{"topic":"x","partition":0,"offset":-1}]"#;
        let entries = parse_last_event_id(id).expect("entries");
        assert_eq!(entries.len(), 2);
        let mut positions = Positions::new(entries, Some(5000));
        assert!(positions.skips(&event("eqiad.rc", 1, 999)));
        assert!(!positions.skips(&event("eqiad.rc", 1, 1000)));
        assert!(positions.skips(&event("codfw.rc", 7, 9000)));
        assert!(!positions.skips(&event("codfw.rc", 8, 0)));
        // A topic-partition without an entry starts at `since`.
        assert!(positions.skips(&event("other", 0, 4999)));
        assert!(!positions.skips(&event("other", 0, 5000)));
        assert_eq!(parse_last_event_id("nonsense"), None);
        assert_eq!(parse_last_event_id("[]"), None);
    }

    #[test]
    fn a_seek_is_not_a_filter_when_meta_dt_goes_backwards() {
        let id = r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1005}]"#;
        let mut positions = Positions::new(parse_last_event_id(id).expect("entries"), None);
        let sent: Vec<i64> = [1000, 1003, 1005, 998, 1010, 1001]
            .iter()
            .enumerate()
            .filter(|&(offset, &dt)| !positions.skips(&event("eqiad.rc", offset as i64, dt)))
            .map(|(_, &dt)| dt)
            .collect();
        assert_eq!(sent, [1005, 998, 1010, 1001]);
        // Ids keep the highest timestamp sent, so an older event last does not move them back.
        let mut ids = Positions::new(Vec::new(), None);
        ids.id_after(&event("eqiad.rc", 0, 1010), IdMarks::Timestamps);
        let id = ids.id_after(&event("eqiad.rc", 1, 998), IdMarks::Timestamps);
        assert_eq!(
            id,
            r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1010}]"#
        );
        // since= seeks the same way, per topic-partition.
        let mut since = Positions::new(Vec::new(), Some(1005));
        let sent: Vec<(&str, i64)> = [("a", 1000), ("b", 1006), ("a", 1007), ("b", 900), ("a", 1)]
            .iter()
            .filter(|(topic, dt)| !since.skips(&event(topic, 0, *dt)))
            .copied()
            .collect();
        assert_eq!(sent, [("b", 1006), ("a", 1007), ("b", 900), ("a", 1)]);
    }

    #[test]
    fn ids_list_every_topic_partition_seen() {
        let mut positions = Positions::new(Vec::new(), None);
        let first = positions.id_after(&event("eqiad.rc", 5, 1000), IdMarks::Timestamps);
        assert_eq!(
            first,
            r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1000}]"#
        );
        positions.id_after(&event("codfw.rc", 9, 1001), IdMarks::Offsets);
        let third = positions.id_after(&event("eqiad.rc", 6, 1002), IdMarks::Offsets);
        let value: serde_json::Value = serde_json::from_str(&third).expect("json");
        assert_eq!(value[0]["offset"], 6);
        assert_eq!(value[1]["topic"], "codfw.rc");
        // An id this server wrote resumes right after the event it belongs to.
        let mut resumed = Positions::new(parse_last_event_id(&third).expect("entries"), None);
        assert!(resumed.skips(&event("eqiad.rc", 6, 0)));
        assert!(!resumed.skips(&event("eqiad.rc", 7, 0)));
    }
}
