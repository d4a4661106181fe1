//! The checkpoint decoder on arbitrary text: it must return a value or an error, never panic,
//! and whatever it accepts must survive an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::archive::checkpoint;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    if let Ok(decoded) = checkpoint::decode(text) {
        let again = checkpoint::decode(&checkpoint::encode(&decoded)).expect("re-decoding an encoded checkpoint");
        assert_eq!(decoded, again);
        for file in &decoded.files {
            assert!(!file.name.contains('/') && !file.final_name.contains('/'));
        }
    }
});
