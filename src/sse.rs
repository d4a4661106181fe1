//! Server-Sent Events parser: bytes in, events out.
//!
//! Implements the WHATWG HTML Standard's "event stream interpretation" rules (section
//! "Server-sent events": UTF-8 with one leading BOM skipped, CRLF/LF/CR line ends, `:` comments,
//! the `event`, `data`, `id` and `retry` fields), incrementally: the same bytes fed in any
//! chunking give the same events.
//! It performs no I/O, reads no clock and never fails; a line or event larger than the configured
//! limit is cut off and handed on marked `oversize`, so the caller can record it as a reject.
//! It does not know what an event *means* (JSON, canaries, dedup): that is `run::judge`'s business.

use std::borrow::Cow;

/// The UTF-8 byte order mark, skipped once at the very start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event, borrowing the parser's buffers until the callback returns.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, `message` when absent or empty.
    pub event_type: &'a str,
    /// The joined `data:` lines, without the final line feed.
    pub data: &'a str,
    /// The last event id at dispatch time; empty when the stream never set one.
    pub id: &'a str,
    /// True when the event exceeded the size limit and `data` holds only its beginning.
    pub oversize: bool,
}

/// What the parser hands to its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete event (terminated by an empty line).
    Event(Event<'a>),
    /// A valid `retry:` field: the server's reconnection delay in milliseconds.
    Retry(u64),
}

/// Incremental SSE parser for one connection.
///
/// Create a new one per connection: a new stream may start with a BOM again, and a partial line or
/// event from a dropped connection must not leak into the next one.
#[derive(Debug)]
pub struct Parser {
    max_event_bytes: usize,
    /// Bytes of a line that started in an earlier chunk.
    line: Vec<u8>,
    /// The current line was longer than the limit; the excess was not kept.
    line_oversize: bool,
    /// The previous chunk ended in CR: an LF at the start of the next one ends no new line.
    after_cr: bool,
    /// While the stream's first bytes may still be a BOM: how many of its bytes matched so far.
    /// `None` once decided (skipped, or not a BOM).
    bom_pending: Option<usize>,
    data: String,
    event_type: String,
    last_event_id: String,
    event_oversize: bool,
}

impl Parser {
    /// A parser that holds at most about `max_event_bytes` of one event's data in memory.
    pub fn new(max_event_bytes: usize) -> Parser {
        Parser {
            max_event_bytes,
            line: Vec::new(),
            line_oversize: false,
            after_cr: false,
            bom_pending: Some(0),
            data: String::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            event_oversize: false,
        }
    }

    /// Feeds one chunk of the stream; calls `on_item` for every event or retry completed by it.
    pub fn feed(&mut self, mut chunk: &[u8], on_item: &mut dyn FnMut(Item<'_>)) {
        if let Some(n_seen) = self.bom_pending {
            chunk = self.skip_bom(n_seen, chunk);
            if chunk.is_empty() {
                return;
            }
        }
        if self.after_cr {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            let Some(end) = find_line_end(chunk) else {
                self.append_to_line(chunk);
                return;
            };
            let line_end = chunk[end];
            let mut next = end + 1;
            if line_end == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The chunk ends in CR: the next chunk may start with its LF.
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() && !self.line_oversize {
                // Common path: the whole line is inside this chunk, no copy needed.
                let line = &chunk[..end];
                let cap = self.max_line_bytes();
                self.process_line(&line[..line.len().min(cap)], line.len() > cap, on_item);
            } else {
                self.append_to_line(&chunk[..end]);
                let line = std::mem::take(&mut self.line);
                let oversize = std::mem::replace(&mut self.line_oversize, false);
                self.process_line(&line, oversize, on_item);
                // Keep the allocation for the next long line.
                self.line = line;
                self.line.clear();
            }
            chunk = &chunk[next..];
        }
    }

    /// Ends the stream: an event without its terminating empty line is discarded.
    pub fn finish(&mut self) {
        self.line.clear();
        self.line_oversize = false;
        self.after_cr = false;
        self.reset_event();
    }

    fn skip_bom<'c>(&mut self, n_seen: usize, chunk: &'c [u8]) -> &'c [u8] {
        let want = &BOM[n_seen..];
        let n_common = want.len().min(chunk.len());
        if chunk[..n_common] != want[..n_common] {
            // Not a BOM after all: the bytes held back so far are ordinary stream bytes.
            self.bom_pending = None;
            self.append_to_line(&BOM[..n_seen]);
            return chunk;
        }
        if n_common == want.len() {
            self.bom_pending = None;
        } else {
            self.bom_pending = Some(n_seen + n_common);
        }
        &chunk[n_common..]
    }

    /// A line may carry a whole event's data plus a field name; beyond that, keep nothing.
    fn max_line_bytes(&self) -> usize {
        self.max_event_bytes + 16
    }

    fn append_to_line(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes().saturating_sub(self.line.len());
        if bytes.len() > room {
            self.line_oversize = true;
        }
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn process_line(
        &mut self,
        line: &[u8],
        line_oversize: bool,
        on_item: &mut dyn FnMut(Item<'_>),
    ) {
        if line.is_empty() {
            self.dispatch(on_item);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => self.append_data(value, line_oversize),
            // An id line cut off by the size limit is not a trustworthy resume point.
            b"id" if !line_oversize && !value.contains(&0) => {
                self.last_event_id.clear();
                self.last_event_id.push_str(&String::from_utf8_lossy(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let delay_ms = value.iter().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                on_item(Item::Retry(delay_ms));
            }
            _ => {}
        }
    }

    fn append_data(&mut self, value: &[u8], line_oversize: bool) {
        // Valid UTF-8 (every real event) is checked at the speed of `from_utf8`; only invalid
        // bytes take the slower lossy path.
        let value: Cow<'_, str> = match std::str::from_utf8(value) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value),
        };
        let room = self.max_event_bytes.saturating_sub(self.data.len());
        if line_oversize || value.len() + 1 > room {
            self.event_oversize = true;
            let mut cut = value.len().min(room);
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            self.data.push_str(&value[..cut]);
            return;
        }
        self.data.push_str(&value);
        self.data.push('\n');
    }

    fn dispatch(&mut self, on_item: &mut dyn FnMut(Item<'_>)) {
        if self.data.is_empty() && !self.event_oversize {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        };
        on_item(Item::Event(Event {
            event_type,
            data: &self.data,
            id: &self.last_event_id,
            oversize: self.event_oversize,
        }));
        self.reset_event();
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.event_type.clear();
        self.event_oversize = false;
        // Do not keep a multi-megabyte buffer around after one oversize event.
        if self.data.capacity() > 1 << 20 {
            self.data.shrink_to(64 * 1024);
        }
    }
}

/// The index of the first LF or CR in `bytes`, eight bytes at a time (a line of `data` is
/// about a kilobyte; a byte loop was a tenth of the archiver's CPU with SSE scanning and UTF-8).
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    // A byte of `x` is zero exactly where the word matches; this sets its high bit (and
    // perhaps those of later bytes, which the byte search below never reaches).
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let x = u64::from_ne_bytes(word.try_into().expect("chunks of eight"));
        if has_zero(x ^ LF) | has_zero(x ^ CR) != 0 {
            break;
        }
        offset += 8;
    }
    bytes[offset..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|idx| offset + idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_found_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for end in [b'\n', b'\r'] {
                    let mut bytes = vec![b'x'; len];
                    // Bytes that are near LF and CR in value, to catch a wrong word test.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'x', 0x0b, 0x0c, 0x8a, 0x8d, 0x09, 0x0e][i % 7];
                    }
                    bytes[at] = end;
                    if at + 1 < len {
                        bytes[at + 1] = b'\n';
                    }
                    assert_eq!(find_line_end(&bytes), Some(at), "{len} {at}");
                }
            }
            assert_eq!(find_line_end(&vec![b'a'; len]), None);
        }
    }

    /// An owned copy of an item, so tests can collect them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Event {
            event_type: String,
            data: String,
            id: String,
            oversize: bool,
        },
        Retry(u64),
    }

    fn to_owned(item: Item<'_>) -> Owned {
        match item {
            Item::Event(e) => Owned::Event {
                event_type: e.event_type.to_string(),
                data: e.data.to_string(),
                id: e.id.to_string(),
                oversize: e.oversize,
            },
            Item::Retry(ms) => Owned::Retry(ms),
        }
    }

    fn parse_chunks(chunks: &[&[u8]], max: usize) -> Vec<Owned> {
        let mut parser = Parser::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut |item| out.push(to_owned(item)));
        }
        parser.finish();
        out
    }

    /// Parses `input` whole and byte by byte, asserts both agree, and returns the items.
    fn parse(input: &[u8]) -> Vec<Owned> {
        let whole = parse_chunks(&[input], 1 << 20);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            whole,
            parse_chunks(&bytes, 1 << 20),
            "byte-by-byte differs for {input:?}"
        );
        whole
    }

    fn ev(event_type: &str, data: &str, id: &str) -> Owned {
        Owned::Event {
            event_type: event_type.into(),
            data: data.into(),
            id: id.into(),
            oversize: false,
        }
    }

    #[test]
    fn wikimedia_framing() {
        let input = b"event: message\nid: [{\"offset\":1}]\ndata: {\"a\":1}\n\n";
        assert_eq!(
            parse(input),
            vec![ev("message", "{\"a\":1}", "[{\"offset\":1}]")]
        );
    }

    #[test]
    fn line_endings_lf_cr_crlf_mixed() {
        let input = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r";
        assert_eq!(
            parse(input),
            vec![ev("message", "a\nb\nc", ""), ev("message", "d", "")]
        );
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_ending() {
        let items = parse_chunks(&[b"data: x\r", b"\n", b"\r", b"\n"], 100);
        assert_eq!(items, vec![ev("message", "x", "")]);
        // Without the LF, CR CR is two line endings: the second one dispatches.
        let items = parse_chunks(&[b"data: x\r", b"\r"], 100);
        assert_eq!(items, vec![ev("message", "x", "")]);
    }

    #[test]
    fn leading_bom_skipped_once() {
        assert_eq!(
            parse(b"\xEF\xBB\xBFdata: a\n\n"),
            vec![ev("message", "a", "")]
        );
        // A second BOM is part of the field name, which is then unknown.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
        // A partial BOM is not skipped: it makes the first line's name unknown.
        assert_eq!(
            parse(b"\xEF\xBBdata: a\n\ndata: b\n\n"),
            vec![ev("message", "b", "")]
        );
    }

    #[test]
    fn comments_ignored() {
        assert_eq!(
            parse(b": keep-alive\n:\ndata: a\n: mid\n\n"),
            vec![ev("message", "a", "")]
        );
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // "data" alone appends an empty line; "event" alone resets the type to the default.
        assert_eq!(parse(b"data\ndata\n\n"), vec![ev("message", "\n", "")]);
        assert_eq!(parse(b"event\ndata: x\n\n"), vec![ev("message", "x", "")]);
    }

    #[test]
    fn only_one_space_after_colon_is_dropped() {
        assert_eq!(
            parse(b"data:a\n\ndata:  b\n\n"),
            vec![ev("message", "a", ""), ev("message", " b", "")]
        );
    }

    #[test]
    fn multi_line_data_joined_with_lf() {
        assert_eq!(
            parse(b"data: 1\ndata:\ndata: 3\n\n"),
            vec![ev("message", "1\n\n3", "")]
        );
    }

    #[test]
    fn empty_data_buffer_dispatches_nothing_and_resets_type() {
        assert_eq!(
            parse(b"event: x\n\ndata: a\n\n"),
            vec![ev("message", "a", "")]
        );
        // A single empty data line does dispatch, with empty data.
        assert_eq!(parse(b"data:\n\n"), vec![ev("message", "", "")]);
    }

    #[test]
    fn id_persists_and_nul_is_ignored() {
        let input = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0\ndata: c\n\nid\ndata: d\n\n";
        assert_eq!(
            parse(input),
            vec![
                ev("message", "a", "1"),
                ev("message", "b", "1"),
                ev("message", "c", "1"),
                ev("message", "d", "")
            ]
        );
    }

    #[test]
    fn retry_only_ascii_digits() {
        let input = b"retry: 1500\nretry: 1.5\nretry: -1\nretry:\nretry: 12a\nretry:99999999999999999999999\n";
        assert_eq!(
            parse(input),
            vec![Owned::Retry(1500), Owned::Retry(u64::MAX)]
        );
    }

    #[test]
    fn type_is_reset_after_dispatch_and_names_are_case_sensitive() {
        let input = b"event: error\ndata: a\n\ndata: b\n\nEvent: x\nDATA: y\ndata: c\n\n";
        assert_eq!(
            parse(input),
            vec![
                ev("error", "a", ""),
                ev("message", "b", ""),
                ev("message", "c", "")
            ]
        );
    }

    #[test]
    fn unknown_fields_ignored() {
        assert_eq!(
            parse(b"foo: bar\ndata: a\n\n"),
            vec![ev("message", "a", "")]
        );
    }

    #[test]
    fn incomplete_event_discarded_at_end() {
        assert_eq!(parse(b"data: a\n\ndata: b\n"), vec![ev("message", "a", "")]);
        assert_eq!(parse(b"data: a\n\ndata: b"), vec![ev("message", "a", "")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(
            parse(b"data: a\xFFb\xE2\x82\n\n"),
            vec![ev("message", "a\u{FFFD}b\u{FFFD}", "")]
        );
        assert_eq!(
            parse(b"event: \xC0x\ndata: 1\n\n"),
            vec![ev("\u{FFFD}x", "1", "")]
        );
    }

    #[test]
    fn oversize_event_is_cut_and_marked_and_stream_goes_on() {
        let mut input = b"data: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\ndata: more\n\ndata: ok\n\n");
        for chunking in [1, 7, input.len()] {
            let chunks: Vec<&[u8]> = input.chunks(chunking).collect();
            let items = parse_chunks(&chunks, 20);
            assert_eq!(items.len(), 2);
            match &items[0] {
                Owned::Event { data, oversize, .. } => {
                    assert!(*oversize);
                    assert!(data.len() <= 20, "kept {} bytes", data.len());
                }
                other => panic!("expected an event, got {other:?}"),
            }
            assert_eq!(items[1], ev("message", "ok", ""));
        }
    }

    #[test]
    fn oversize_cut_respects_char_boundaries() {
        let items = parse_chunks(&["data: ééééé\n\n".as_bytes()], 4);
        match &items[0] {
            Owned::Event {
                data,
                oversize: true,
                ..
            } => assert_eq!(data, "éé"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversize_lines_do_not_grow_memory() {
        let mut parser = Parser::new(1000);
        let chunk = vec![b'y'; 4096];
        parser.feed(b"data: ", &mut |_| {});
        for _ in 0..1000 {
            parser.feed(&chunk, &mut |_| {});
        }
        assert!(
            parser.line.capacity() < 8192,
            "line buffer grew to {}",
            parser.line.capacity()
        );
        let mut n_events = 0;
        parser.feed(b"\n\n", &mut |item| {
            assert!(matches!(item, Item::Event(Event { oversize: true, .. })));
            n_events += 1;
        });
        assert_eq!(n_events, 1);
    }

    /// A small deterministic generator, so the property tests need no extra crate.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random SSE-like input: real field names, odd ones, all line endings, BOMs, NULs, bad UTF-8.
    fn random_stream(rng: &mut SplitMix) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"data",
            b"data:",
            b"data: ",
            b"event:",
            b"event: error",
            b"id:",
            b"id: 7",
            b"retry:",
            b"retry: 30",
            b":",
            b": ka",
            b"x",
            b"{\"a\":1}",
            b"\0",
            b"\xFF",
            b"\xE2\x82",
            b"\xEF\xBB\xBF",
            "é".as_bytes(),
            b" ",
            b"\n",
            b"\r",
            b"\r\n",
            b"\n\n",
            b"\r\r",
        ];
        let n_pieces = rng.below(60);
        let mut out = Vec::new();
        for _ in 0..n_pieces {
            out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
        out
    }

    #[test]
    fn any_chunking_gives_the_same_items() {
        let mut rng = SplitMix(42);
        for _ in 0..3000 {
            let input = random_stream(&mut rng);
            let max = [8, 64, 1 << 20][rng.below(3)];
            let whole = parse_chunks(&[&input], max);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(9));
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(
                whole,
                parse_chunks(&chunks, max),
                "input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    /// A deliberately naive reading of the same rules: decode the whole input, split it into
    /// lines, interpret each. No chunking, no limits, no cleverness: the reference for the
    /// differential test below.
    fn naive_parse(input: &[u8]) -> Vec<Owned> {
        let text = String::from_utf8_lossy(input);
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        let mut lines = Vec::new();
        let mut current = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    lines.push(std::mem::take(&mut current));
                }
                '\n' => lines.push(std::mem::take(&mut current)),
                other => current.push(other),
            }
        }
        // `current` holds an unterminated last line: discarded, like its event.
        let (mut data, mut event_type, mut id) = (String::new(), String::new(), String::new());
        let mut out = Vec::new();
        for line in lines {
            if line.is_empty() {
                if !data.is_empty() {
                    data.pop();
                    let event_type = if event_type.is_empty() {
                        "message".to_string()
                    } else {
                        event_type.clone()
                    };
                    out.push(Owned::Event {
                        event_type,
                        data: data.clone(),
                        id: id.clone(),
                        oversize: false,
                    });
                }
                data.clear();
                event_type.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.split_once(':') {
                Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match name {
                "event" => event_type = value.to_string(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id = value.to_string(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    out.push(Owned::Retry(value.parse().unwrap_or(u64::MAX)));
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn streaming_parser_agrees_with_the_naive_one() {
        let mut rng = SplitMix(7);
        for _ in 0..5000 {
            let input = random_stream(&mut rng);
            let expected = naive_parse(&input);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(13));
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(
                parse_chunks(&chunks, 1 << 20),
                expected,
                "input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
