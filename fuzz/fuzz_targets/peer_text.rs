//! What other programs send as text: an S3 server's answer (status, XML body, `Date`,
//! `Retry-After`) and the values of `serve`'s filter parameters. None may panic; the wait a
//! failure leads to stays bounded, and an answer's words come out no longer than it went in
//! plus the fixed text around them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::filter::{Filter, VALUE_FILTERS};
use wikistream_archiver::ship::answer::{classify_parts, xml_blocks, xml_text};
use wikistream_archiver::ship::retry::retry_delay;

fuzz_target!(|input: &[u8]| {
    let Some((&[a, b], rest)) = input.split_first_chunk::<2>().map(|(h, r)| (h, r)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut lines = text.splitn(3, '\n');
    let (date, retry_after, body) = (lines.next(), lines.next(), lines.next().unwrap_or(""));
    let status = u16::from_le_bytes([a, b]) % 1000;
    let failure = classify_parts(status, body, date, retry_after);
    assert!(failure.message.len() <= 2 * text.len() + 512, "{}", failure.message.len());
    let wait = retry_delay(1 + u32::from(a), &failure, f64::from(b) / 256.0);
    assert!(wait <= std::time::Duration::from_secs(900), "{wait:?}");
    let _ = xml_text(body, "Key");
    let _ = xml_blocks(body, "Contents").count();
    for name in VALUE_FILTERS {
        let _ = Filter::default().set(name, text);
    }
});
