//! What peers and users hand us as text: `Retry-After` values, `since`/`--since` times and stream
//! URLs. None may panic; every accepted wait is finite arithmetic, and an accepted URL has an
//! http(s) scheme and a host.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use wikistream_archiver::{client, config, times};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let now = UNIX_EPOCH + Duration::from_secs(1_732_352_400);
    if let Some(wait) = client::parse_retry_after(text, now) {
        // The cap and the sleep that follow must not overflow either.
        let capped = wait.min(client::MAX_RETRY_AFTER);
        let _ = std::time::Instant::now().checked_add(capped).expect("a capped wait fits");
    }
    let _ = times::parse_ms_or_rfc3339(text);
    if config::values::url_problem(text).is_none() {
        assert!(text.starts_with("http://") || text.starts_with("https://"));
    }
});
