//! The request-head reader shared by `serve` and the health endpoint, on arbitrary bytes: it
//! must never panic, a head it finds must end with the empty line (CRLF or bare LF line ends),
//! and what it parses must come from that text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::httpd;

fuzz_target!(|input: &[u8]| {
    if let Some(end) = httpd::head_end(input) {
        let head = &input[..end.min(input.len())];
        assert!(end <= input.len() && (head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n")));
    }
    let text = String::from_utf8_lossy(input);
    if let Some(head) = httpd::parse(&text) {
        assert!(!head.method.is_empty() && !head.target.is_empty());
        assert!(head.target.starts_with(head.path()));
        let _ = head.query();
        for name in ["last-event-id", "accept", "host"] {
            if let Some(value) = head.header(name) {
                assert!(text.contains(value));
            }
        }
    }
});
