//! `event::inspect`'s fast path (`jsonscan`) against serde_json on arbitrary text: wherever the
//! fast path answers, serde_json must accept the text and read the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::{event, jsonscan};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    if jsonscan::scan(text).is_some() {
        let serde = event::inspect_by_serde(text);
        assert!(serde.is_ok(), "the fast path accepted what serde_json refuses: {text:?}");
        assert_eq!(event::inspect(text), serde);
    }
});
