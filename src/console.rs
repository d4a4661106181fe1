//! Printing events for people: `tail` and `run --tee`.
//!
//! `format_line` is pure: one event's data line in, one readable line out (time, wiki, type,
//! title, user, size change, comment cut to a width, ANSI colour on request). `Printer` owns
//! stdout: it decides colour and width once at start (a terminal, `NO_COLOR`), buffers, and
//! reports a closed pipe as an error the caller turns into a quiet stop. It does not filter or
//! count events.

use std::borrow::Cow;
use std::io::{self, BufWriter, IsTerminal, Write};

use serde::Deserialize;

/// How `tail` and `run --tee` print events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event.
    Line,
    /// The event's data line as received.
    Json,
}

/// Output is flushed when this much is buffered, and after every read from the network.
const STDOUT_BUFFER_BYTES: usize = 64 * 1024;
/// Width used on a terminal whose size cannot be read.
const FALLBACK_WIDTH: usize = 100;

/// The fields a readable line shows; anything may be missing.
#[derive(Deserialize, Default)]
struct Shown<'a> {
    #[serde(borrow, default)]
    meta: Option<MetaFields<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    wiki: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    comment: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    log_action: Option<Cow<'a, str>>,
    #[serde(default)]
    length: Option<Length>,
    #[serde(default)]
    bot: Option<bool>,
}

#[derive(Deserialize, Default)]
struct MetaFields<'a> {
    #[serde(borrow, default)]
    dt: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    domain: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct Length {
    #[serde(default)]
    old: Option<i64>,
    #[serde(default)]
    new: Option<i64>,
}

/// ANSI SGR codes per part of the line.
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// Builds a line from coloured pieces and keeps count of the visible characters.
struct Line {
    text: String,
    n_chars: usize,
    color: bool,
}

impl Line {
    fn push(&mut self, color: &str, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if self.n_chars > 0 {
            self.text.push(' ');
            self.n_chars += 1;
        }
        if self.color && !color.is_empty() {
            self.text.push_str(color);
        }
        // Control characters (newlines in comments, escapes) would break the one-line layout
        // or the terminal.
        for c in piece.chars() {
            self.text.push(if c.is_control() { ' ' } else { c });
            self.n_chars += 1;
        }
        if self.color && !color.is_empty() {
            self.text.push_str(RESET);
        }
    }
}

/// One readable line for an event's data (without a newline): `time wiki type title user ±size
/// comment`, with the comment cut so that the line fits `width` characters when given.
pub fn format_line(data: &str, width: Option<usize>, color: bool) -> String {
    let mut line = Line {
        text: String::with_capacity(160),
        n_chars: 0,
        color,
    };
    let Ok(fields) = serde_json::from_str::<Shown<'_>>(data) else {
        line.push("", data);
        return cut(line.text, width, color);
    };
    let meta = fields.meta.unwrap_or_default();
    let dt = meta.dt.as_deref().unwrap_or_default();
    // RFC 3339 `2024-11-23T09:00:00Z`: the clock time is characters 11 to 19.
    line.push(DIM, dt.get(11..19).unwrap_or(dt));
    let wiki = fields.wiki.or(meta.domain).unwrap_or_default();
    line.push(CYAN, &format!("{wiki:<12}"));
    let kind = fields.kind.as_deref().unwrap_or("?");
    let kind_color = match kind {
        "edit" => YELLOW,
        "new" => GREEN,
        "log" => MAGENTA,
        "categorize" => BLUE,
        _ => "",
    };
    let kind = match (&fields.log_action, kind) {
        (Some(action), "log") => format!("log/{action}"),
        _ => kind.to_string(),
    };
    line.push(kind_color, &format!("{kind:<10}"));
    line.push(BOLD, fields.title.as_deref().unwrap_or_default());
    let user = fields.user.as_deref().unwrap_or_default();
    let user = match (fields.bot, user.is_empty()) {
        (Some(true), false) => format!("{user} (bot)"),
        _ => user.to_string(),
    };
    line.push(DIM, &user);
    if let Some(Length {
        old,
        new: Some(new),
    }) = fields.length
    {
        let change = new - old.unwrap_or(0);
        let (change_color, sign) = if change < 0 { (RED, "") } else { (GREEN, "+") };
        line.push(change_color, &format!("{sign}{change}"));
    }
    line.push("", fields.comment.as_deref().unwrap_or_default());
    cut(line.text, width, color)
}

/// Cuts `text` to `width` visible characters, ending in `…` when cut. Escape sequences do not
/// count; a cut inside a coloured piece still ends with a reset.
fn cut(text: String, width: Option<usize>, color: bool) -> String {
    let Some(width) = width else {
        return text;
    };
    if visible_chars(&text)
        .map(|(_, c)| char_width(c))
        .sum::<usize>()
        <= width
    {
        return text;
    }
    // Keep what fits in all but one column, then the ellipsis.
    let mut used = 0;
    for (idx, c) in visible_chars(&text) {
        let w = char_width(c);
        if used + w > width.saturating_sub(1) {
            let mut out = text[..idx].to_string();
            out.push('…');
            if color {
                out.push_str(RESET);
            }
            return out;
        }
        used += w;
    }
    text
}

/// The characters of `text` outside ANSI SGR escapes, with their byte positions.
fn visible_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_escape = false;
    text.char_indices().filter(move |&(_, c)| {
        if in_escape {
            in_escape = c != 'm';
            return false;
        }
        if c == '\x1b' {
            in_escape = true;
            return false;
        }
        true
    })
}

/// Terminal columns of a character: 2 for East Asian wide and fullwidth characters (CJK,
/// Hangul, kana, fullwidth forms, most emoji), 0 for combining marks, zero-width and control
/// characters, 1 otherwise. A small table of the ranges that occur in wiki titles and comments,
/// in place of a Unicode width crate.
pub fn char_width(c: char) -> usize {
    let cp = c as u32;
    const ZERO: &[(u32, u32)] = &[
        (0x0000, 0x001F),
        (0x007F, 0x009F),
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0591, 0x05BD),
        (0x0610, 0x061A),
        (0x064B, 0x065F),
        (0x0E31, 0x0E31),
        (0x0E34, 0x0E3A),
        (0x0E47, 0x0E4E),
        (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x20D0, 0x20FF),
        (0xFE00, 0xFE0F),
        (0xFE20, 0xFE2F),
        (0xFEFF, 0xFEFF),
        (0xE0100, 0xE01EF),
    ];
    const WIDE: &[(u32, u32)] = &[
        (0x1100, 0x115F),
        (0x2E80, 0x303E),
        (0x3041, 0x33FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xA000, 0xA4CF),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF),
        (0x20000, 0x2FFFD),
        (0x30000, 0x3FFFD),
    ];
    let within = |ranges: &[(u32, u32)]| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp));
    if within(ZERO) {
        0
    } else if within(WIDE) {
        2
    } else {
        1
    }
}

/// Terminal columns of `text` (escapes included, which take none).
pub fn display_width(text: &str) -> usize {
    visible_chars(text).map(|(_, c)| char_width(c)).sum()
}

/// Prints events to stdout in the chosen format.
pub struct Printer {
    format: Format,
    color: bool,
    width: Option<usize>,
    out: BufWriter<io::Stdout>,
}

impl Printer {
    /// A printer on stdout: colour and width only when stdout is a terminal (and colour only
    /// without `NO_COLOR`).
    pub fn stdout(format: Format) -> Printer {
        let is_terminal = io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            format,
            color: is_terminal && !no_color,
            width: is_terminal.then(terminal_width),
            out: BufWriter::with_capacity(STDOUT_BUFFER_BYTES, io::stdout()),
        }
    }

    /// Prints one event; an error (usually a closed pipe) means stdout is gone.
    pub fn print(&mut self, data: &str) -> io::Result<()> {
        match self.format {
            Format::Json => self.out.write_all(data.as_bytes())?,
            Format::Line => self
                .out
                .write_all(format_line(data, self.width, self.color).as_bytes())?,
        }
        self.out.write_all(b"\n")
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The terminal's width: `COLUMNS`, else `stty size` on the controlling terminal.
fn terminal_width() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    from_env
        .or_else(|| {
            let tty = std::fs::File::open("/dev/tty").ok()?;
            let output = std::process::Command::new("stty")
                .arg("size")
                .stdin(tty)
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            let text = String::from_utf8(output.stdout).ok()?;
            text.split_whitespace().nth(1)?.parse().ok()
        })
        .filter(|&w: &usize| w >= 20)
        .unwrap_or(FALLBACK_WIDTH)
}

/// True for the error of writing to a closed pipe (`… | head`).
pub fn is_closed_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDIT: &str = r#"{"type":"edit","wiki":"enwiki","title":"Zebra","user":"Ann","bot":false,"length":{"old":100,"new":223},"comment":"fix\ntypo in the infobox","meta":{"dt":"2024-11-23T09:00:05Z","domain":"en.wikipedia.org"}}"#;

    #[test]
    fn readable_line_has_every_part() {
        let line = format_line(EDIT, None, false);
        assert_eq!(
            line,
            "09:00:05 enwiki       edit       Zebra Ann +123 fix typo in the infobox"
        );
        let shrink = EDIT.replace("\"new\":223", "\"new\":55");
        assert!(format_line(&shrink, None, false).contains(" -45 "));
        let log = r#"{"type":"log","log_action":"block","user":"B","bot":true,"meta":{"domain":"x.org"}}"#;
        assert_eq!(
            format_line(log, None, false),
            "x.org        log/block  B (bot)"
        );
    }

    #[test]
    fn width_counts_terminal_columns() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(
            display_width("e\u{301}"),
            1,
            "a combining accent takes no column"
        );
        assert_eq!(display_width("\x1b[33m한국\x1b[0m"), 4);
        let ja = r#"{"meta":{"dt":"2024-11-23T09:00:00Z","domain":"ja.wikipedia.org"},"type":"edit","wiki":"jawiki","title":"東京都の地下鉄路線の一覧と歴史的な変遷について","user":"利用者","comment":"出典を追加しました。詳しくはノートページを参照してください"}"#;
        for width in [20, 41, 60, 61] {
            for color in [false, true] {
                let line = format_line(ja, Some(width), color);
                assert!(display_width(&line) <= width, "{width}: {line}");
                assert!(display_width(&line) >= width - 1, "{width}: {line}");
                assert!(line.contains('…'));
            }
        }
    }

    #[test]
    fn width_cuts_the_visible_text_only() {
        let plain = format_line(EDIT, Some(40), false);
        assert_eq!(plain.chars().count(), 40);
        assert!(plain.ends_with('…'));
        let coloured = format_line(EDIT, Some(40), true);
        assert!(coloured.contains("\x1b[33m"));
        assert!(coloured.ends_with(RESET));
        let visible: String = {
            let mut out = String::new();
            let mut in_escape = false;
            for c in coloured.chars() {
                match (in_escape, c) {
                    (_, '\x1b') => in_escape = true,
                    (true, 'm') => in_escape = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        };
        assert_eq!(visible, plain);
        // A line that fits is not cut.
        assert_eq!(
            format_line(EDIT, Some(500), false),
            format_line(EDIT, None, false)
        );
    }

    #[test]
    fn not_json_is_shown_raw() {
        assert_eq!(format_line("oops\u{7}", Some(80), false), "oops ");
    }
}
