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
        // Names are relative paths inside the archive directory (`stream/date=…/file`): never
        // absolute, never up or out of it.
        for name in decoded.files.iter().flat_map(|f| [&f.name, &f.final_name]) {
            assert!(!name.contains('\\'), "{name}");
            assert!(
                name.split('/').all(|part| !part.is_empty() && part != "." && part != ".."),
                "{name}"
            );
        }
    }
});
