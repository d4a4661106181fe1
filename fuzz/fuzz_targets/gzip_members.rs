//! The gzip member scanner (what recovery and reading archives use) on arbitrary file contents:
//! it must never panic, and the intact prefix it reports must decode as gzip on its own.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::archive::intact_prefix;

fuzz_target!(|input: &[u8]| {
    let path = std::env::temp_dir().join(format!("wsa-fuzz-gzip-{}", std::process::id()));
    std::fs::write(&path, input).expect("writing the fuzz input");
    let prefix = intact_prefix(&path).expect("scanning a readable file");
    assert!(prefix.length <= input.len() as u64);
    if prefix.length == 0 {
        return;
    }
    let mut text = Vec::new();
    let head = &input[..prefix.length as usize];
    flate2::read::MultiGzDecoder::new(head).read_to_end(&mut text).expect("the intact prefix decodes");
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count() as u64, prefix.n_lines);
});
