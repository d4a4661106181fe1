//! What one event's `data` is: a JSON object to archive, or a reject with a reason.
//!
//! Pure functions over a `&str`: validation (the whole text must be one JSON object), the few
//! `meta` fields the archiver acts on (`id`, `domain`, `dt`, `stream`), and the duplicate filter.
//! It does not decide where anything is written; `run` and `archive` do that. It also names
//! the event types the counters tell apart (`EventType`).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::labels::{Label, label_set};

label_set! {
    /// Why an event cannot go into the archive; written into the rejects file.
    pub enum RejectReason {
        /// `data` is not valid JSON.
        InvalidJson => "invalid_json",
        /// `data` is valid JSON but not an object.
        NotAnObject => "not_an_object",
        /// The event was larger than `--max-event-bytes`; only its beginning was kept.
        Oversize => "oversize",
        /// The event type is not `message` (e.g. `error`).
        UnexpectedType => "unexpected_type",
        /// Partitioned layout: `meta.stream` is not a string, or not a name that may become a
        /// directory (`archive::partition::is_safe_stream_name`).
        BadStream => "bad_stream",
        /// Partitioned layout: `meta.dt` is missing, not RFC 3339, or out of bounds
        /// (`archive::partition::place`).
        BadDate => "bad_date",
        /// Partitioned layout: the stream would be one more than `--max-streams` allows.
        TooManyStreams => "too_many_streams",
    }
}

label_set! {
    /// An event's `type`, as far as counters tell types apart.
    pub enum EventType {
        Edit => "edit",
        New => "new",
        Log => "log",
        Categorize => "categorize",
        /// Any other type, or none.
        Other => "other",
    }
}

impl EventType {
    /// The counter type of an event whose `type` field is `kind`.
    pub fn of(kind: Option<&str>) -> EventType {
        let known = &EventType::ALL[..EventType::ALL.len() - 1];
        kind.and_then(|k| known.iter().copied().find(|t| t.as_str() == k))
            .unwrap_or(EventType::Other)
    }
}

/// The `meta` fields the archiver needs; any of them may be missing.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Meta<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub domain: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub dt: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub stream: Option<Cow<'a, str>>,
    /// Kafka topic, partition and offset, which EventStreams puts into `meta`.
    #[serde(borrow, default)]
    pub topic: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub partition: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// The event's top-level `type` (`edit`, `new`, `log`, `categorize` on recentchange).
    #[serde(skip)]
    pub kind: Option<Cow<'a, str>>,
    /// The top-level `wiki` (database name such as `enwiki`), for filters.
    #[serde(skip)]
    pub wiki: Option<Cow<'a, str>>,
    /// The top-level `bot` flag when it is a boolean.
    #[serde(skip)]
    pub bot: Option<bool>,
    /// The top-level `namespace` when it is an integer.
    #[serde(skip)]
    pub namespace: Option<i64>,
    /// `meta.stream` is there but not a string (the rest of `meta` is then not read either).
    #[serde(skip)]
    pub stream_unreadable: bool,
    /// `meta.dt` is there but not a string (the rest of `meta` is then not read either).
    #[serde(skip)]
    pub dt_unreadable: bool,
}

impl Meta<'_> {
    /// Canary events are Wikimedia's artificial heartbeats.
    pub fn is_canary(&self) -> bool {
        self.domain.as_deref() == Some("canary")
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    meta: Option<Meta<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    wiki: Option<Cow<'a, str>>,
    // Loose types: an odd `bot` or `namespace` must not cost the event its `meta`.
    #[serde(default, deserialize_with = "lenient_bool")]
    bot: Option<bool>,
    #[serde(default, deserialize_with = "lenient_i64")]
    namespace: Option<i64>,
}

/// An integer, or `None` for any other JSON value (a bool or number in a `Value` does not
/// allocate; other shapes are rare and only cost their own parse).
fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_i64())
}

/// A boolean, or `None` for any other JSON value.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_bool())
}

/// Validates `data` as one JSON object and reads its `meta`: by `jsonscan` for the common shape,
/// else by serde_json, whose answer is the rule (`jsonscan` never accepts what it refuses).
pub fn inspect(data: &str) -> Result<Meta<'_>, RejectReason> {
    match crate::jsonscan::scan(data) {
        Some(fields) => Ok(Meta {
            id: fields.id.map(Cow::Borrowed),
            domain: fields.domain.map(Cow::Borrowed),
            dt: fields.dt.map(Cow::Borrowed),
            stream: fields.stream.map(Cow::Borrowed),
            topic: fields.topic.map(Cow::Borrowed),
            partition: fields.partition,
            offset: fields.offset,
            kind: fields.kind.map(Cow::Borrowed),
            wiki: fields.wiki.map(Cow::Borrowed),
            bot: fields.bot,
            namespace: fields.namespace,
            stream_unreadable: false,
            dt_unreadable: false,
        }),
        None => inspect_by_serde(data),
    }
}

/// `inspect` by serde_json alone: the reference for `jsonscan`.
pub fn inspect_by_serde(data: &str) -> Result<Meta<'_>, RejectReason> {
    // serde would accept a JSON array for a struct; an archive line must be an object.
    if !data.trim_start().starts_with('{') {
        return match serde_json::from_str::<IgnoredAny>(data) {
            Ok(_) => Err(RejectReason::NotAnObject),
            Err(_) => Err(RejectReason::InvalidJson),
        };
    }
    match serde_json::from_str::<Envelope<'_>>(data) {
        Ok(envelope) => {
            let mut meta = envelope.meta.unwrap_or_default();
            meta.kind = envelope.kind;
            meta.wiki = envelope.wiki;
            meta.bot = envelope.bot;
            meta.namespace = envelope.namespace;
            Ok(meta)
        }
        // Valid JSON whose `meta` has an unexpected shape is still archived, without meta; the
        // partitioned layout needs to know whether its stream and date were there.
        Err(_) => match serde_json::from_str::<serde_json::Value>(data) {
            Ok(value) => {
                let there_but_not_text = |key: &str| {
                    let field = &value["meta"][key];
                    !field.is_null() && !field.is_string()
                };
                Ok(Meta {
                    stream_unreadable: there_but_not_text("stream"),
                    dt_unreadable: there_but_not_text("dt"),
                    ..Meta::default()
                })
            }
            Err(_) => Err(RejectReason::InvalidJson),
        },
    }
}

/// How many recent `meta.id`s the window remembers to drop repeats. At 100 events/s this covers
/// well over a minute; resends after a reconnect concern the boundary millisecond only. 16
/// bytes each.
pub const DEDUP_WINDOW: usize = 8192;

/// Remembers the last `capacity` event ids and says whether one was seen already.
///
/// Memory is bounded: ids are kept as 128-bit keys (the UUID itself when `meta.id` is a UUID,
/// which it always is on Wikimedia streams, so the check is exact there).
#[derive(Debug)]
pub struct RecentIds {
    capacity: usize,
    order: VecDeque<u128>,
    seen: HashSet<u128>,
}

impl RecentIds {
    /// A window of `capacity` ids.
    pub fn new(capacity: usize) -> RecentIds {
        RecentIds {
            capacity,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
        }
    }

    /// A window of `capacity` ids that already holds `keys` (oldest first), e.g. from a checkpoint.
    pub fn with_keys(capacity: usize, keys: &[u128]) -> RecentIds {
        let mut ids = RecentIds::new(capacity);
        for &key in keys {
            ids.insert_key(key);
        }
        ids
    }

    /// The newest `n` keys, oldest first.
    pub fn newest(&self, n: usize) -> Vec<u128> {
        self.order
            .iter()
            .skip(self.order.len().saturating_sub(n))
            .copied()
            .collect()
    }

    /// Records `id`; returns false if it was already in the window (a duplicate).
    #[cfg(test)]
    fn insert(&mut self, id: &str) -> bool {
        self.insert_key(id_key(id))
    }

    /// Whether `key` (from `id_key`) is in the window.
    pub fn contains_key(&self, key: u128) -> bool {
        self.seen.contains(&key)
    }

    /// Records `key` (from `id_key`); returns false if it was already in the window.
    pub fn insert_key(&mut self, key: u128) -> bool {
        if !self.seen.insert(key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(key);
        true
    }
}

/// A UUID as its 128-bit value; anything else as a 128-bit FNV-1a hash with the top bit set.
/// A hashed non-UUID could in theory meet a UUID key; real streams only carry UUIDs.
pub fn id_key(id: &str) -> u128 {
    if let Some(value) = uuid_value(id) {
        return value;
    }
    const FNV_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const FNV_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    let hash = id.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(FNV_PRIME)
    });
    hash | (1 << 127)
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` without allocating.
fn uuid_value(id: &str) -> Option<u128> {
    if id.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (idx, b) in id.bytes().enumerate() {
        if matches!(idx, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        value = value << 4 | u128::from(char::from(b).to_digit(16)?);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meta_fields_with_and_without_escapes() {
        let meta = inspect(r#"{"meta":{"id":"a","domain":"en.wikipedia.org","dt":"2024-01-01T00:00:00Z","x":[1]},"t":"\u00e9"}"#)
            .expect("valid");
        assert_eq!(meta.id.as_deref(), Some("a"));
        assert_eq!(meta.domain.as_deref(), Some("en.wikipedia.org"));
        assert_eq!(meta.kind, None);
        let meta = inspect(r#"{"type":"edit","meta":{"stream":"mediawiki.recentchange"}}"#)
            .expect("valid");
        assert_eq!(meta.kind.as_deref(), Some("edit"));
        assert_eq!(meta.stream.as_deref(), Some("mediawiki.recentchange"));
        assert_eq!(meta.wiki, None);
        let meta = inspect(r#"{"wiki":"enwiki","bot":true,"namespace":14,"meta":{"id":"b"}}"#)
            .expect("valid");
        assert_eq!(
            (meta.wiki.as_deref(), meta.bot, meta.namespace),
            (Some("enwiki"), Some(true), Some(14))
        );
        let meta = inspect(r#"{"bot":"yes","namespace":[1],"meta":{"id":"c"}}"#).expect("valid");
        assert_eq!(
            (meta.id.as_deref(), meta.bot, meta.namespace),
            (Some("c"), None, None)
        );
        let meta = inspect(r#"{"meta":{"id":"d","topic":"eqiad.x","partition":0,"offset":"9"}}"#)
            .expect("valid");
        assert_eq!(
            (
                meta.id.as_deref(),
                meta.topic.as_deref(),
                meta.partition,
                meta.offset
            ),
            (Some("d"), Some("eqiad.x"), Some(0), None)
        );
        let meta = inspect(r#"{"meta":{"domain":"can\u0061ry"}}"#).expect("valid");
        assert!(meta.is_canary());
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        assert_eq!(inspect("not json"), Err(RejectReason::InvalidJson));
        assert_eq!(inspect(""), Err(RejectReason::InvalidJson));
        assert_eq!(inspect("{\"a\":1"), Err(RejectReason::InvalidJson));
        assert_eq!(inspect("{\"a\":1} {}"), Err(RejectReason::InvalidJson));
        assert_eq!(inspect("{\"a\":tru}"), Err(RejectReason::InvalidJson));
        assert_eq!(inspect("[1,2]"), Err(RejectReason::NotAnObject));
        assert_eq!(inspect("42"), Err(RejectReason::NotAnObject));
    }

    #[test]
    fn odd_meta_is_archived_without_meta() {
        assert_eq!(inspect(r#"{"meta":5}"#), Ok(Meta::default()));
        assert_eq!(inspect(r#"{"meta":{"id":7}}"#), Ok(Meta::default()));
        assert_eq!(inspect("{}"), Ok(Meta::default()));
    }

    #[test]
    fn label_sets_and_event_types() {
        crate::labels::tests::check_label_set::<RejectReason>();
        crate::labels::tests::check_label_set::<EventType>();
        assert_eq!(EventType::of(Some("log")), EventType::Log);
        assert_eq!(EventType::of(Some("weird")), EventType::Other);
        assert_eq!(EventType::of(Some("other")), EventType::Other);
        assert_eq!(EventType::of(None), EventType::Other);
    }

    #[test]
    fn recent_ids_window_is_bounded() {
        let mut ids = RecentIds::new(2);
        assert!(ids.insert("4b7e3a4e-7f0a-4b39-9a38-0a3c1b2d3e4f"));
        assert!(!ids.insert("4b7e3a4e-7f0a-4b39-9a38-0a3c1b2d3e4f"));
        assert!(ids.insert("x"));
        assert!(ids.insert("y"));
        // The first id fell out of the window of two.
        assert!(ids.insert("4b7e3a4e-7f0a-4b39-9a38-0a3c1b2d3e4f"));
        assert!(!ids.insert("y"));
        assert_eq!(ids.order.len(), 2);
        let restored = RecentIds::with_keys(2, &ids.newest(5));
        assert_eq!(restored.newest(5), ids.newest(5));
        assert_eq!(
            ids.newest(1),
            vec![id_key("4b7e3a4e-7f0a-4b39-9a38-0a3c1b2d3e4f")]
        );
    }
}
