//! From what the wire says of an event's stream and date to a path: any input either gives a
//! stream directory that passes the name rule and a date partition, which together stay a
//! plain relative path under the archive directory, or a reject reason.
//!
//! Input: an event's JSON (read by `event::inspect`, as the archiver does), or else a stream
//! name and a `meta.dt`, separated by the first line feed.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::archive::naming;
use wikistream_archiver::archive::partition::{self, Field, Place};
use wikistream_archiver::{event, times};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let asked = vec!["recentchange".to_string()];
    let now = times::parse_rfc3339("2024-11-23T09:00:00Z").expect("a time");
    let meta;
    let place = match event::inspect(text) {
        Ok(found) if text.starts_with('{') => {
            meta = found;
            Place {
                stream: Field::of(meta.stream.as_deref(), meta.stream_unreadable),
                dt: Field::of(meta.dt.as_deref(), meta.dt_unreadable),
                dt_ms: meta.dt.as_deref().and_then(times::parse_rfc3339_ms),
            }
        }
        _ => {
            let (stream, dt) = text.split_once('\n').unwrap_or((text, ""));
            Place {
                stream: Field::Text(stream),
                dt: Field::Text(dt),
                dt_ms: times::parse_rfc3339_ms(dt),
            }
        }
    };
    let Ok((stream, time)) = partition::place(&place, &asked, now) else { return };
    assert!(partition::is_safe_stream_name(stream), "{stream:?}");
    let rel = naming::partition_dir(stream, time.date());
    let path = Path::new(&rel);
    assert!(
        path.components().all(|c| matches!(c, Component::Normal(_))),
        "not a plain relative path: {rel:?}"
    );
    assert_eq!(path.components().count(), 2, "{rel:?}");
    assert!(!rel.starts_with(['_', '.']), "{rel:?}");
});
