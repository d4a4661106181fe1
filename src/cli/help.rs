//! The help text, made from the table of flags (`flags.rs`) and the subcommands (`SUBCOMMANDS`):
//! each flag's entry from its name, value, help and default (from the `defaults` leaf); the
//! prose around them here. The man page is made from this text (`make man`).

use std::fmt::Write as _;

use super::flags::{self, Default, Flag, Group, Topic};
use super::{OTHER_WORDS, SUBCOMMANDS};
use crate::defaults as d;

/// The column where a flag's help starts.
const HELP_COLUMN: usize = 28;
/// The widest line of prose that lists flags (`tail`'s).
const TEXT_WIDTH: usize = 92;

const TITLE: &str =
    "wikistream-archiver: archive Wikimedia EventStreams as rotating gzip NDJSON files";

/// The sections of the help, in the order of the whole text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Usage,
    RunOptions,
    Filters,
    Tail,
    Cat,
    Verify,
    Parse,
    ServeOptions,
    Shipping,
    Ship,
    Schema,
    ExitCodes,
}

const ALL: [Section; 12] = [
    Section::Usage,
    Section::RunOptions,
    Section::Filters,
    Section::Tail,
    Section::Cat,
    Section::Verify,
    Section::Parse,
    Section::ServeOptions,
    Section::Shipping,
    Section::Ship,
    Section::Schema,
    Section::ExitCodes,
];

/// The sections that make up a topic's help.
fn sections(topic: Topic) -> &'static [Section] {
    match topic {
        Topic::Run => &[
            Section::Usage,
            Section::RunOptions,
            Section::Shipping,
            Section::Filters,
            Section::ExitCodes,
        ],
        Topic::Tail => &[Section::Tail, Section::Filters, Section::ExitCodes],
        Topic::Cat => &[Section::Cat, Section::Filters, Section::ExitCodes],
        Topic::Verify => &[Section::Verify, Section::ExitCodes],
        Topic::Parse => &[Section::Parse, Section::ExitCodes],
        Topic::Serve => &[Section::ServeOptions, Section::ExitCodes],
        Topic::Ship => &[Section::Ship, Section::ExitCodes],
        Topic::Schema => &[Section::Schema, Section::ExitCodes],
    }
}

/// The help for `topic`: `None` (`--help`) lists the subcommands and the flags of `run`, the
/// default; a subcommand's shows only its own usage, flags and defaults.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn help_for(topic: Option<Topic>) -> String {
    let mut out = format!("{TITLE}\n");
    for &section in sections(topic.unwrap_or(Topic::Run)) {
        out.push('\n');
        out.push_str(&render(section));
    }
    if topic.is_none() {
        let others: Vec<&str> = SUBCOMMANDS[1..].iter().map(|sub| sub.name).collect();
        let _ = writeln!(
            out,
            "\nMore: wikistream-archiver help {} (or SUBCOMMAND --help)",
            others.join("|")
        );
    }
    out
}

/// The whole help text, every section: what the man page is made from.
pub fn help() -> String {
    let mut out = format!("{TITLE}\n");
    for section in ALL {
        out.push('\n');
        out.push_str(&render(section));
    }
    out
}

/// One section, ending in a line feed.
fn render(section: Section) -> String {
    match section {
        Section::Usage => usage(),
        Section::RunOptions => format!(
            "RUN OPTIONS:\n{}{}",
            entries(|f| f.group == Group::Run),
            "    Sizes take K, M, G, T (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024); durations
    take s, m, h, d (also ms, w); a bare number is in the unit the flag names. Where a flag
    takes off, an empty value means off too.
"
        ),
        Section::Filters => format!(
            "FILTERS (run, tail, cat; flags combine with AND, a flag's comma-separated values with OR):\n\
             {}    Filtered-out events are counted (wikistream_filtered_total), never archived.\n",
            entries(|f| f.group == Group::Filter)
        ),
        Section::Tail => {
            let accepted = flags::of(Topic::Tail).filter(|f| f.group == Group::Run);
            let names: Vec<String> = accepted.map(|f| format!("--{}", f.long)).collect();
            format!(
                "TAIL:
    wikistream-archiver tail [--stream NAMES | --url URL] [FILTERS] [--format line|json]
    Connects, resumes and reconnects like run, and prints instead of archiving; logs only
    warnings unless -v. Colour only on a terminal and without NO_COLOR. Run options it takes:
{}",
                wrap(&names.join(" "))
            )
        }
        Section::Cat => format!(
            "CAT:
    wikistream-archiver cat [FILTERS] [--from TIME] [--to TIME] [--count] [PATH..]
    Prints the NDJSON of archive files, or of all archive files in directories (in sequence
    order, the open .part file last), default the current directory. A torn or damaged gzip
    tail is read up to its last intact member and reported on stderr.
{}",
            entries(|f| f.group == Group::Cat)
        ),
        Section::Verify => format!(
            "VERIFY:
    wikistream-archiver verify [--gap SECS] [--offset-slack N] [--json] DIR
    Summarises an archive directory (files, events, time range, bytes, compression, rejects,
    canaries) and lists problems: damaged files, duplicate meta.ids (exact within a window of
    the last {} events), offset jumps per topic-partition, and time gaps. Exit 1 when a
    file is damaged or an event is duplicated. A progress line shows on a terminal.
{}",
            d::DUPLICATE_WINDOW,
            entries(|f| f.group == Group::Verify)
        ),
        Section::Parse => "PARSE:
    wikistream-archiver parse [FILE]
    Reads raw SSE bytes and prints one JSON object per line: {\"event\",\"data\",\"id\"} for each
    dispatched event and {\"retry\": MS} for each valid retry field.
"
        .to_string(),
        Section::ServeOptions => format!(
            "SERVE OPTIONS:\n{}{}    Also: Accept: application/json gives NDJSON; /_info names the \
             server; CORS is open.\n    Prints `listening on ADDR:PORT` as its first line on \
             stdout.\n    Filters, as cat's flags: ?wiki=W,..&type=T,..&domain=D,..\
             &namespace=N,..&bot=true|false&match=RE\n    (bots_only=true as bot=true); \
             since and Last-Event-ID resume past what they leave out.\n",
            entries(|f| f.group == Group::Serve),
            entries(|f| f.group != Group::Serve && f.takes.contains(&Topic::Serve)),
        ),
        Section::Shipping => format!(
            "SHIPPING (run; one of --ship-to and --on-ready):\n{}    A file counts as shipped once \
             S3 answered 200 (or CMD exited 0), recorded in DIR/.ship/;\n    failures are \
             retried with backoff, oldest file first, across restarts. With shipping on,\n    \
             --keep-days and --max-archive-bytes delete only shipped files; --keep-days 0 \
             deletes\n    them once shipped.\n",
            entries(|f| f.group == Group::Shipping)
        ),
        Section::Ship => format!(
            "SHIP:
    wikistream-archiver ship --to s3://BUCKET/PREFIX [--dry-run | --check] DIR
    Uploads the completed files of an archive directory (flat or partitioned) that its journal
    in DIR/.ship/ does not list yet, as run --ship-to does (it shares the journal), and exits;
    exit 1 when a file could not be uploaded. Credentials, region and endpoint as for run.
{}{}",
            entries(|f| f.group == Group::Ship),
            entries(|f| f.group == Group::Shipping && f.takes.contains(&Topic::Ship)),
        ),
        Section::Schema => format!(
            "SCHEMA:
    wikistream-archiver schema [--engine duckdb|spark|athena] [--location URL] DIR
    Prints table definitions for the archive directory's streams: a DuckDB view over
    read_json with Hive partitions, a Spark SQL table USING json PARTITIONED BY (date), an
    Athena / Glue external table over the S3 prefix with partition projection on date.
    recentchange is typed; other streams get the columns every event has.
{}",
            entries(|f| f.group == Group::Schema)
        ),
        Section::ExitCodes => "EXIT CODES:
    0 success, 1 runtime failure (verify: damage found), 2 usage error,
    75 another run holds the output directory
"
        .to_string(),
    }
}

fn usage() -> String {
    let mut lines: Vec<(String, &str)> = SUBCOMMANDS
        .iter()
        .map(|sub| (sub.synopsis.to_string(), sub.summary))
        .collect();
    let [help, completions] = OTHER_WORDS;
    lines.push((format!("{help} [SUBCOMMAND]"), "the help of one subcommand"));
    lines.push((
        format!("{completions} SHELL"),
        "print completions for bash, zsh or fish",
    ));
    let width = lines.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let mut out = String::from("USAGE:\n");
    for (synopsis, summary) in lines {
        let _ = writeln!(out, "    wikistream-archiver {synopsis:width$} {summary}");
    }
    out.push_str("    wikistream-archiver --version | --help\n");
    out
}

/// The entries of the flags `wanted` picks, in table order.
fn entries(wanted: impl Fn(&Flag) -> bool) -> String {
    flags::FLAGS
        .iter()
        .filter(|f| wanted(f))
        .map(entry)
        .collect()
}

/// One flag's entry: its names and value, then its help from `HELP_COLUMN` (on the next line
/// when the names reach that far), with its default where the text says.
fn entry(flag: &Flag) -> String {
    let mut names = String::from("    ");
    if let Some(c) = flag.short {
        let _ = write!(names, "-{c}, ");
    }
    let _ = write!(names, "--{}", flag.long);
    if let Some(value) = flag.value {
        let _ = write!(names, " {value}");
    }
    let default = flag.default.map(|default| {
        let text = match default {
            Default::Number(n) => n.to_string(),
            Default::Text(text) => text.to_string(),
            Default::Relative(dir) => format!("./{dir}"),
            Default::OnOff(on) => if on { "on" } else { "off" }.to_string(),
        };
        format!("[default: {text}]")
    });
    let help = flag
        .help
        .replace("{default}", default.as_deref().unwrap_or_default());
    let mut out = names;
    for (idx, line) in help.lines().enumerate() {
        let column = match idx == 0 && out.len() < HELP_COLUMN {
            true => HELP_COLUMN - out.len(),
            false => {
                out.push('\n');
                HELP_COLUMN
            }
        };
        let _ = write!(out, "{:column$}{line}", "");
    }
    out.push('\n');
    out
}

/// `words` as indented lines of at most `TEXT_WIDTH` columns.
fn wrap(words: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("   ");
    for word in words.split(' ') {
        if line.len() + 1 + word.len() > TEXT_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}
