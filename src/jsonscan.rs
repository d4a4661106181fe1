//! The fast path of `event::inspect`: one pass over an event's `data` that checks it is one
//! JSON object and picks out the few fields the archiver reads, without serde's visitors (the
//! JSON check was a tenth of the archiver's CPU).
//!
//! It answers only for the common shape: `meta` an object (or null), the picked strings without
//! escapes, no picked key twice, no escaped key where keys are picked, the lenient fields
//! (`bot`, `namespace`, `partition`, `offset`) not arrays or objects. Anything else, and
//! anything it is not sure is valid, is `None`: the caller then asks serde_json, whose answer is
//! the rule. So this may be stricter than serde_json, never looser (the tests below and the
//! `inspect` fuzz target compare the two). Pure; it allocates only a stack for deep nesting.

/// The fields `inspect` reads, from a valid object of the common shape.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pub id: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub dt: Option<&'a str>,
    pub stream: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub partition: Option<i64>,
    pub offset: Option<i64>,
    pub kind: Option<&'a str>,
    pub wiki: Option<&'a str>,
    pub bot: Option<bool>,
    pub namespace: Option<i64>,
}

/// The fields of `text` when it is one valid JSON object of the common shape; `None` when it is
/// not, or when this cannot tell (serde_json decides then).
pub fn scan(text: &str) -> Option<Fields<'_>> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut fields = Fields::default();
    let mut seen = 0u16;
    scanner.ws();
    scanner.object(&mut |s, key| s.top_field(key, &mut fields, &mut seen))?;
    scanner.ws();
    (scanner.at == scanner.bytes.len()).then_some(fields)
}

/// Marks `bit` in `seen`; `None` when it was marked already (serde_json refuses a duplicate
/// field of a struct).
fn first(seen: &mut u16, bit: u16) -> Option<()> {
    let first = *seen & bit == 0;
    *seen |= bit;
    first.then_some(())
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    // The release build optimises for size and would call these per byte.
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    // The release build optimises for size and would call these per byte.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// JSON whitespace: space, tab, line feed, carriage return.
    // The release build optimises for size and would call these per byte.
    #[inline(always)]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// An object at `at`, calling `field` with each key (`None` for one with an escape) and
    /// `at` on its value, which `field` consumes.
    fn object(
        &mut self,
        field: &mut dyn FnMut(&mut Scanner<'a>, Option<&'a str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let (key, escaped) = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            field(self, (!escaped).then_some(key))?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn top_field(
        &mut self,
        key: Option<&'a str>,
        fields: &mut Fields<'a>,
        seen: &mut u16,
    ) -> Option<()> {
        match key? {
            "meta" => {
                first(seen, 1)?;
                match self.peek()? {
                    b'{' => {
                        let mut meta_seen = 0u16;
                        self.object(&mut |s, key| s.meta_field(key, fields, &mut meta_seen))
                    }
                    _ => self.literal(b"null"),
                }
            }
            "type" => {
                first(seen, 2)?;
                fields.kind = self.plain_string_or_null()?;
                Some(())
            }
            "wiki" => {
                first(seen, 4)?;
                fields.wiki = self.plain_string_or_null()?;
                Some(())
            }
            "bot" => {
                first(seen, 8)?;
                fields.bot = match self.peek()? {
                    b't' => self.literal(b"true").map(|()| Some(true))?,
                    b'f' => self.literal(b"false").map(|()| Some(false))?,
                    _ => self.lenient_other()?,
                };
                Some(())
            }
            "namespace" => {
                first(seen, 16)?;
                fields.namespace = self.lenient_int()?;
                Some(())
            }
            _ => self.value(),
        }
    }

    fn meta_field(
        &mut self,
        key: Option<&'a str>,
        fields: &mut Fields<'a>,
        seen: &mut u16,
    ) -> Option<()> {
        let (bit, slot) = match key? {
            "id" => (1, &mut fields.id),
            "domain" => (2, &mut fields.domain),
            "dt" => (4, &mut fields.dt),
            "stream" => (8, &mut fields.stream),
            "topic" => (16, &mut fields.topic),
            "partition" => {
                first(seen, 32)?;
                fields.partition = self.lenient_int()?;
                return Some(());
            }
            "offset" => {
                first(seen, 64)?;
                fields.offset = self.lenient_int()?;
                return Some(());
            }
            _ => return self.value(),
        };
        first(seen, bit)?;
        *slot = self.plain_string_or_null()?;
        Some(())
    }

    /// A string without escapes (`Some`), or `null` (`None` inside); anything else fails.
    fn plain_string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        match self.string()? {
            (text, false) => Some(Some(text)),
            (_, true) => None,
        }
    }

    /// An integer that fits `i64` (`Some`), or a scalar that is not a number (`None` inside),
    /// as serde_json's `Value::as_i64` sees them. Fractions, exponents and integers beyond
    /// `u64` fail (serde_json reads them as floats and may refuse them), and so do arrays and
    /// objects (serde_json would build a `Value` of them, with its depth limit).
    fn lenient_int(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                let integer = self.number()?;
                // Slices at ASCII bytes of a `str` are `str`s: no second UTF-8 check.
                let text = self.text.get(start..self.at)?;
                if !integer {
                    // serde_json reads it as a float, and refuses one out of range.
                    return None;
                }
                match text.parse::<i64>() {
                    // serde_json reads `-0` as the float -0.0, which `as_i64` refuses.
                    Ok(_) if text == "-0" => Some(None),
                    Ok(value) => Some(Some(value)),
                    // A u64 is no i64; anything larger is a float to serde_json (see above).
                    Err(_) => text.parse::<u64>().is_ok().then_some(None),
                }
            }
            _ => self.lenient_other(),
        }
    }

    /// A scalar that is not what a lenient field wants: `None` inside. A number must be one
    /// `lenient_int` takes and a string must have no escape: serde_json builds a `Value` of
    /// it, and may refuse a float out of range or a lone surrogate.
    fn lenient_other<T>(&mut self) -> Option<Option<T>> {
        match self.peek()? {
            b'[' | b'{' => None,
            b'-' | b'0'..=b'9' => self.lenient_int().map(|_| None),
            // serde_json builds a `String` of it, refusing a lone surrogate escape.
            b'"' => match self.string()? {
                (_, false) => Some(None),
                (_, true) => None,
            },
            _ => self.value().map(|()| None),
        }
    }

    /// A string at `at`: its contents as written (escapes not undone) and whether it has an
    /// escape. Control characters are refused and escapes checked, as serde_json does.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += skip_plain(&self.bytes[self.at..]);
            match self.peek()? {
                b'"' => {
                    let text = self.text.get(start..self.at)?;
                    self.at += 1;
                    return Some((text, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                // A control character.
                _ => return None,
            }
        }
    }

    /// A number at `at`, by JSON's grammar; true when it is an integer (no fraction or
    /// exponent).
    fn number(&mut self) -> Option<bool> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.eat(b'.').is_some() {
            integer = false;
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.peek().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        // serde_json refuses a digit after a leading zero; so does JSON.
        (!matches!(self.peek(), Some(b'0'..=b'9'))).then_some(integer)
    }

    // The release build optimises for size and would call these per byte.
    #[inline(always)]
    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Any value at `at`, nested as deep as it goes (a stack of open containers, not
    /// recursion: an 8 MiB event of `[` must not overflow the thread's stack).
    fn value(&mut self) -> Option<()> {
        // true: an object (a key comes next), false: an array.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // At a value.
            match self.peek()? {
                b'{' | b'[' => {
                    let is_object = self.peek()? == b'{';
                    self.at += 1;
                    self.ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.eat(close).is_none() {
                        open.push(is_object);
                        if is_object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => {
                    self.number()?;
                }
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(&is_object) = open.last() else {
                    return Some(());
                };
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.ws();
                        if is_object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if is_object => {
                        self.at += 1;
                        open.pop();
                    }
                    b']' if !is_object => {
                        self.at += 1;
                        open.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// A key and its colon, leaving `at` on the value.
    fn key(&mut self) -> Option<()> {
        self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }
}

/// How many bytes at the start of `bytes` need no attention inside a string (not `"`, `\`
/// or a control character), eight at a time.
#[inline(always)]
fn skip_plain(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTE: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASH: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const BELOW_SPACE: u64 = u64::from_ne_bytes([0x20; 8]);
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    // Bytes below 0x20 (all ASCII, so their high bit is clear): x - 0x20 borrows into the
    // high bit only for them, or for bytes with the high bit already set (excluded by !x).
    let has_below_space = |x: u64| x.wrapping_sub(BELOW_SPACE) & !x & HIGHS;
    let mut at = 0;
    for word in bytes.chunks_exact(8) {
        let x = u64::from_ne_bytes(word.try_into().expect("chunks of eight"));
        if has_zero(x ^ QUOTE) | has_zero(x ^ BACKSLASH) | has_below_space(x) != 0 {
            break;
        }
        at += 8;
    }
    at + bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(bytes.len() - at)
}

#[cfg(test)]
mod tests {
    use crate::event::{inspect, inspect_by_serde};

    /// Where the fast path answers, serde_json must agree exactly.
    fn agrees(text: &str) -> bool {
        let Some(_) = super::scan(text) else {
            return false;
        };
        let fast = inspect(text);
        let serde = inspect_by_serde(text);
        assert_eq!(fast, serde, "{text:?}");
        assert!(serde.is_ok(), "{text:?}");
        true
    }

    #[test]
    fn real_events_take_the_fast_path() {
        let fixture = include_str!("../fixtures/recentchange-200.ndjson");
        for line in fixture.lines() {
            assert!(agrees(line), "{line}");
        }
    }

    #[test]
    fn odd_shapes_are_left_to_serde() {
        for text in [
            r#"{"meta":{"id":"a\"b"}}"#,
            r#"{"m\u0065ta":{"id":"a"}}"#,
            r#"{"meta":{"id":"a"},"meta":{"id":"b"}}"#,
            r#"{"meta":{"id":"a","id":"b"}}"#,
            r#"{"meta":"x"}"#,
            r#"{"meta":{"id":7}}"#,
            r#"{"namespace":[1]}"#,
            r#"{"meta":{"offset":1.5}}"#,
            r#"{"namespace":1e999}"#,
            r#"{"bot":2e2222}"#,
            r#"{"bot":"\udeee"}"#,
            r#"{"namespace":123456789012345678901234567890}"#,
            r#"{"bot":{"a":1}}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":tru}"#,
            r#"{"a":nulll}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "{\"a\":1}\u{3000}",
            "[1]",
            "",
        ] {
            assert!(super::scan(text).is_none(), "{text}");
        }
    }

    #[test]
    fn valid_odd_values_agree_with_serde() {
        for text in [
            r#"{}"#,
            r#" { "meta" : null , "type" : null } "#,
            r#"{"a":"\ud800","meta":{"id":"x","partition":-0,"offset":"1"}}"#,
            r#"{"namespace":9223372036854775808,"bot":"yes","meta":{"offset":-9223372036854775808}}"#,
            r#"{"a":[[[[{"b":[{},[],"c\\",-1.5e+3,true,false,null]}]]]],"wiki":"enwiki"}"#,
            r#"{"meta":{"dt":"2024-01-01T00:00:00Z","x":{"id":1}},"type":"edit"}"#,
        ] {
            assert!(agrees(text), "{text}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(agrees(&deep));
    }

    #[test]
    fn mutated_events_never_pass_where_serde_fails() {
        let fixture = include_str!("../fixtures/recentchange-200.ndjson");
        let lines: Vec<&str> = fixture.lines().take(20).collect();
        let pieces = [
            "{",
            "}",
            "[",
            "]",
            "\"",
            ",",
            ":",
            "\\",
            "0",
            "1",
            "-",
            "+",
            ".",
            "e",
            "E",
            "t",
            "n",
            "u",
            " ",
            "\t",
            "\u{1}",
            "\\u",
            "\\ud83d",
            "\"meta\":",
            "null",
            "true",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut n_fast, mut n_total) = (0, 0);
        for _ in 0..20_000 {
            let line = lines[next(lines.len())];
            let mut text = line.to_string();
            for _ in 0..1 + next(3) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => text.insert_str(at, pieces[next(pieces.len())]),
                    1 if at < text.len() => {
                        let end = (at + 1..=text.len())
                            .find(|&e| text.is_char_boundary(e))
                            .unwrap_or(text.len());
                        text.replace_range(at..end, "");
                    }
                    _ => text.insert_str(at, pieces[next(pieces.len())]),
                }
            }
            n_total += 1;
            if agrees(&text) {
                n_fast += 1;
            }
        }
        // Both kinds were met: mutations the fast path took, and ones it left to serde.
        assert!(n_fast > 1000 && n_fast < n_total, "{n_fast} of {n_total}");
    }
}
