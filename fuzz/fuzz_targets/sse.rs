//! The SSE parser on arbitrary bytes, fed whole and in pieces chosen by the input itself: it
//! must never panic, must stay within its memory bound, and must give the same items either way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::sse::{Item, Parser};

fn items(chunks: &[&[u8]], max: usize) -> Vec<String> {
    let mut parser = Parser::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut |item| {
            out.push(match item {
                Item::Event(e) => {
                    assert!(e.data.len() <= max, "data beyond the limit");
                    format!("E{:?}{:?}{:?}{}", e.event_type, e.data, e.id, e.oversize)
                }
                Item::Retry(ms) => format!("R{ms}"),
            })
        });
    }
    parser.finish();
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&split_seed, bytes)) = input.split_first() else { return };
    let max = 64 + usize::from(split_seed) * 8;
    let whole = items(&[bytes], max);
    let step = 1 + usize::from(split_seed % 17);
    let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
    assert_eq!(whole, items(&pieces, max));
});
