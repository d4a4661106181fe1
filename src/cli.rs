//! Command line: the lexopt loops, the `Command` types they produce and the help text.
//!
//! Parsing is strict (unknown flags and stray values are errors) and does no I/O beyond reading
//! argv; paths stay `PathBuf`. Turning these raw values into a running configuration (URLs,
//! agents, files) is the business of the subcommand modules.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;

use crate::filter::{Bots, Filter};

/// The help text; an integration test checks that every flag the parser accepts is listed here.
pub const HELP: &str = "\
wikistream-archiver: archive Wikimedia EventStreams as rotating gzip NDJSON files

USAGE:
    wikistream-archiver [run] [OPTIONS]        archive a stream (the default)
    wikistream-archiver tail [OPTIONS]         print a stream's events instead of archiving them
    wikistream-archiver cat [OPTIONS] [PATH..] print archived events (files or directories)
    wikistream-archiver verify [OPTIONS] DIR   check an archive directory for damage and gaps
    wikistream-archiver parse [FILE]           print the SSE events of FILE (or stdin) as JSON lines
    wikistream-archiver serve --input PATH..   replay archives as an EventStreams server
    wikistream-archiver --version | --help

RUN OPTIONS:
    --stream NAMES          comma-separated stream names [default: recentchange]
    --base-url URL          where stream names are appended
                            [default: https://stream.wikimedia.org/v2/stream/]
    --url URL               full stream URL; replaces --stream and --base-url
    --output-dir DIR        where archive files are written [default: ./archive]
    --since TIME            on the first connection only, start at TIME
                            (milliseconds since the epoch, or RFC 3339 such as 2025-01-31T12:00:00Z)
    --user-agent UA         User-Agent header; put your contact here, as Wikimedia asks
                            [default: wikistream-archiver/VERSION (+https://github.com/wikistream-archiver)]
    --ca-file PEM           trust only the CA certificates in PEM (private servers)
                            [default: the bundled Mozilla root store]
    --idle-timeout SECS     reconnect when no byte arrives for SECS seconds [default: 120]
    --max-events N          exit after archiving N events [default: unlimited]
    --max-event-bytes N     events larger than N bytes go to the rejects file [default: 8388608]
    --level 0-9             gzip compression level [default: 6]
    --keep-canary           archive canary events too (meta.domain == \"canary\") [default: drop]
    --rotate-minute M|off   complete the file at minute M of every UTC hour [default: 5]
    --rotate-events N|off   complete the file after N events [default: 500000]
    --rotate-bytes B|off    complete the file after B compressed bytes (checked as deflate emits
                            its blocks of some tens of KB) [default: off]
                            (SIGUSR1 and shutdown also complete the open file)
    --on-ready CMD          run CMD with each completed file's path as its only argument
                            (no shell; archiving does not wait for it) [default: none]
    --naming ours|wikistreamreader
                            file names: ours (stream-UTCSTART-SEQ.ndjson.gz, .part while open) or
                            the Python archiver's (stream_START_SEQ.gz, .ready when complete)
                            [default: ours]
    --checkpoint-interval SECS|off
                            make the archive durable and record the resume position this often
                            (also at every new file and rotation) [default: 5]
    --gap-warn SECS         warn when a resumed stream jumps more than SECS in meta.dt [default: 120]
    --status-port PORT      serve /check, /metrics and /status on PORT (alias --status_port;
                            0 picks a free port, logged at start) [default: off]
    --status-addr ADDR      address for --status-port; exposing it wider is your choice
                            [default: 127.0.0.1]
    --max-silence SECS      /check fails when no event (canaries count) came for SECS [default: 300]
    --keep-days D           delete completed files older than D days [default: keep all]
    --max-archive-bytes B   delete the oldest completed files while all exceed B bytes
                            [default: no limit]
    --log-timestamps on|off timestamps on log lines; off for journald or svlogd, which add
                            their own [default: on]
    --tee                   also print each archived event on stdout (see --format)
    --format line|json      with --tee and tail: a readable line per event, or the data line
                            [default: line]
    -v, --verbose           more log output (repeat for more); RUST_LOG overrides
    -q, --quiet             less log output (repeat for less)

FILTERS (run, tail, cat; flags combine with AND, a flag's comma-separated values with OR):
    --wiki LIST             keep events whose wiki is listed (enwiki,dewiki)
    --type LIST             keep events of these types (edit,new,log,categorize)
    --domain LIST           keep events of these meta.domain values and their subdomains
                            (wikipedia.org keeps en.wikipedia.org)
    --namespace LIST        keep events in these namespace numbers (0,14)
    --no-bots               leave out events with bot: true
    --bots-only             keep only events with bot: true
    --match REGEX           keep events whose raw data line matches REGEX
    --invert-match          with --match: keep events that do not match
    Filtered-out events are counted (wikistream_filtered_total), never archived.

TAIL:
    wikistream-archiver tail [--stream NAMES | --url URL] [FILTERS] [--format line|json]
    Connects, resumes and reconnects like run, and prints instead of archiving; logs only
    warnings unless -v. Accepts
    --stream --base-url --url --since --user-agent --ca-file --idle-timeout --max-events
    --max-event-bytes --keep-canary --format --log-timestamps -v -q. Colour only on a
    terminal and without NO_COLOR.

CAT:
    wikistream-archiver cat [FILTERS] [--from TIME] [--to TIME] [--count] [PATH..]
    Prints the NDJSON of archive files, or of all archive files in directories (in sequence
    order, the open .part file last), default the current directory. A torn or damaged gzip
    tail is read up to its last intact member and reported on stderr.
    --from TIME             keep events with meta.dt at or after TIME (ms or RFC 3339)
    --to TIME               keep events with meta.dt before TIME
    --count                 print the number of events per file and in total instead

VERIFY:
    wikistream-archiver verify [--gap SECS] [--offset-slack N] [--json] DIR
    Summarises an archive directory (files, events, time range, bytes, compression, rejects,
    canaries) and lists problems: damaged files, duplicate meta.ids (exact within a window of
    the last 524288 events), offset jumps per topic-partition, and time gaps. Exit 1 when a
    file is damaged or an event is duplicated. A progress line shows on a terminal.
    --gap SECS              report meta.dt gaps longer than SECS [default: 300]
    --offset-slack N        offset jumps over at most N offsets are not gaps: canaries, dropped
                            unless --keep-canary, leave single holes [default: 1]
                            (archives made with filters have holes by design: use a large N)
    --json                  print the report as one JSON document

PARSE:
    wikistream-archiver parse [FILE]
    Reads raw SSE bytes and prints one JSON object per line: {\"event\",\"data\",\"id\"} for each
    dispatched event and {\"retry\": MS} for each valid retry field.

SERVE OPTIONS:
    --input PATH            an archive directory, or an NDJSON or NDJSON.gz file with one event
                            data line per line; repeat for more (required). /v2/stream/A,B
                            serves the events whose meta.stream is A or B (or mediawiki.A),
                            merged in meta.dt order; the streams on offer are those in the
                            first 1000 events of each input (see /_info)
    --addr ADDR             address to bind [default: 127.0.0.1]
    --port PORT             port to bind, 0 for any free one [default: 0]
    --retry MS              send `retry: MS` at the start of every response [default: none]
    --rate N                send at most N events per second [default: unlimited]
    --disconnect-every N    close each connection after N events [default: never]
    --cut-mid-event         close in the middle of an event instead of between events
    --stall-after N         once, after N events, stop sending but keep the socket open
    --status-first CODE     answer the first request with CODE (429 and 503 add Retry-After: 1)
    --chaos SEED            each connection ends after 1-5000 events: closed, cut mid-event or
                            stalled, at random but reproducible from SEED (soak tests)
    --id-offsets            ids carry Kafka offsets (meta.offset, else a count per topic) instead
                            of meta.dt timestamps; resuming by timestamp (the default, like
                            EventStreams today) resends events of the boundary millisecond
    --id-timestamps         the default, accepted for old scripts
    --max-connections-per-ip N
                            answer 429 to more than N open streams from one address
                            [default: unlimited]
    Also: Accept: application/json gives NDJSON; /_info names the server; CORS is open.
    --keepalive SECS        send a comment line after SECS seconds without events [default: 15]
    Prints `listening on ADDR:PORT` as its first line on stdout.

EXIT CODES:
    0 success, 1 runtime failure (verify: damage found), 2 usage error,
    75 another run holds the output directory
";

/// The default User-Agent, descriptive as Wikimedia's policy asks.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "wikistream-archiver/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/wikistream-archiver)"
);

/// The parsed command line.
#[derive(Debug)]
pub enum Command {
    Run(Box<RunArgs>),
    Cat(CatArgs),
    Verify(VerifyArgs),
    Parse(ParseArgs),
    Serve(ServeArgs),
    Help,
    Version,
}

/// Where the stream comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Stream names appended to a base URL.
    Streams {
        names: Vec<String>,
        base_url: String,
    },
    /// A full URL given by the user.
    Url(String),
}

/// Options of `run`.
#[derive(Debug)]
pub struct RunArgs {
    pub source: Source,
    pub output_dir: PathBuf,
    /// `--since`, normalised to milliseconds since the epoch.
    pub since_ms: Option<i64>,
    pub user_agent: String,
    pub ca_file: Option<PathBuf>,
    pub idle_timeout: Duration,
    pub max_events: Option<u64>,
    pub max_event_bytes: usize,
    pub level: u32,
    pub keep_canary: bool,
    pub rotation: crate::archive::rotate::Policy,
    pub on_ready: Option<OsString>,
    pub naming_wikistreamreader: bool,
    /// `None` checkpoints only at new files, rotations and shutdown.
    pub checkpoint_interval: Option<Duration>,
    pub gap_warn: Duration,
    pub status_port: Option<u16>,
    pub status_addr: String,
    pub max_silence: Duration,
    pub retention: crate::archive::retention::Policy,
    pub log_timestamps: bool,
    /// Net verbosity: +1 per `-v`, -1 per `-q`.
    pub verbosity: i32,
    /// Which events to keep.
    pub filter: Filter,
    /// `tail` prints instead of archiving; `run --tee` does both.
    pub output: Output,
}

/// What `run` and `tail` do with the events they keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Archive only (`run`).
    Archive,
    /// Archive and print (`run --tee`).
    ArchiveAndPrint(Format),
    /// Print only (`tail`): no output directory, no checkpoint; resumes within the process.
    Print(Format),
}

impl Output {
    /// The print format, when events are printed.
    pub fn print_format(self) -> Option<Format> {
        match self {
            Output::Archive => None,
            Output::ArchiveAndPrint(format) | Output::Print(format) => Some(format),
        }
    }
}

/// How `tail`, `run --tee` print events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per event.
    Line,
    /// The event's data line as received.
    Json,
}

/// Options of `cat`.
#[derive(Debug)]
pub struct CatArgs {
    /// Files or directories; none means the current directory.
    pub paths: Vec<PathBuf>,
    pub filter: Filter,
    /// Print counts instead of events.
    pub count: bool,
}

/// Options of `verify`.
#[derive(Debug)]
pub struct VerifyArgs {
    pub dir: PathBuf,
    /// Time gaps longer than this are problems.
    pub gap: Duration,
    /// Offset jumps that skip at most this many offsets are not gaps (dropped canaries).
    pub offset_slack: u64,
    pub json: bool,
}

/// Options of `parse`.
#[derive(Debug)]
pub struct ParseArgs {
    /// None reads standard input.
    pub input: Option<PathBuf>,
}

/// Options of `serve`.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    /// Archive directories and NDJSON(.gz) files.
    pub inputs: Vec<PathBuf>,
    pub addr: String,
    pub port: u16,
    pub retry_ms: Option<u64>,
    pub rate: Option<f64>,
    pub disconnect_every: Option<u64>,
    pub cut_mid_event: bool,
    pub stall_after: Option<u64>,
    pub status_first: Option<u16>,
    pub keepalive: Duration,
    /// Ids carry offsets instead of timestamps.
    pub id_offsets: bool,
    /// More connections from one address get 429.
    pub max_connections_per_ip: Option<usize>,
    /// `--chaos SEED`: random disconnects, cuts and stalls, reproducible from the seed.
    pub chaos_seed: Option<u64>,
    pub verbosity: i32,
}

/// A usage error: what was wrong, shown with a hint to `--help`.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nTry 'wikistream-archiver --help' for more information.",
            self.0
        )
    }
}

impl std::error::Error for Error {}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error(e.to_string())
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error(message.into())
}

/// Parses the whole command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut run = RunBuilder::default();
    let mut n_run_flags = 0;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word) if word == "run" => return run_cmd(parser, run),
            Value(word) if word != "run" && n_run_flags > 0 => {
                return Err(usage(format!(
                    "run options must not come before '{}'",
                    word.to_string_lossy()
                )));
            }
            Value(word) if word == "tail" => {
                let tail = RunBuilder {
                    tail: true,
                    ..RunBuilder::default()
                };
                return run_cmd(parser, tail);
            }
            Value(word) if word == "cat" => return cat_cmd(parser),
            Value(word) if word == "verify" => return verify_cmd(parser),
            Value(word) if word == "parse" => return parse_cmd(parser),
            Value(word) if word == "serve" => return serve_cmd(parser),
            Value(word) => {
                return Err(usage(format!(
                    "unknown subcommand '{}'",
                    word.to_string_lossy()
                )));
            }
            other => {
                let flag = flag_name(&other);
                let unexpected = other.unexpected();
                if !run.take(&mut parser, &flag)? {
                    return Err(unexpected.into());
                }
                n_run_flags += 1;
            }
        }
    }
    run.build()
}

/// Collects `run` options; shared by the implicit and the explicit `run`.
#[derive(Default)]
struct RunBuilder {
    streams: Option<String>,
    base_url: Option<String>,
    url: Option<String>,
    output_dir: Option<PathBuf>,
    since_ms: Option<i64>,
    user_agent: Option<String>,
    ca_file: Option<PathBuf>,
    idle_timeout_secs: Option<u64>,
    max_events: Option<u64>,
    max_event_bytes: Option<usize>,
    level: Option<u32>,
    keep_canary: bool,
    rotate_minute: Option<Option<u64>>,
    rotate_events: Option<Option<u64>>,
    rotate_bytes: Option<Option<u64>>,
    on_ready: Option<OsString>,
    naming_wikistreamreader: bool,
    checkpoint_interval: Option<Option<Duration>>,
    gap_warn_secs: Option<u64>,
    status_port: Option<u16>,
    status_addr: Option<String>,
    max_silence_secs: Option<u64>,
    keep_days: Option<u64>,
    max_archive_bytes: Option<u64>,
    log_timestamps: Option<bool>,
    verbosity: i32,
    filter: FilterBuilder,
    /// Building `tail`: only the flags in `TAIL_FLAGS` (and filters) are accepted.
    tail: bool,
    tee: bool,
    format: Option<Format>,
}

/// The `run` flags that also make sense for `tail` (which writes no files).
const TAIL_FLAGS: [&str; 12] = [
    "--stream",
    "--base-url",
    "--url",
    "--since",
    "--user-agent",
    "--ca-file",
    "--idle-timeout",
    "--max-events",
    "--max-event-bytes",
    "--keep-canary",
    "--format",
    "--log-timestamps",
];

impl RunBuilder {
    /// Consumes `flag` (`--name` or `-c`) if it is a `run` option; returns false if it is not one.
    fn take(&mut self, parser: &mut lexopt::Parser, flag: &str) -> Result<bool, Error> {
        if self.filter.take(parser, flag, false)? {
            return Ok(true);
        }
        let verbosity_flag = matches!(flag, "-v" | "--verbose" | "-q" | "--quiet");
        if self.tail && !verbosity_flag && !TAIL_FLAGS.contains(&flag) {
            return Ok(false);
        }
        match flag {
            "--tee" => self.tee = true,
            "--format" => {
                self.format = match string_value(parser, flag)?.as_str() {
                    "line" => Some(Format::Line),
                    "json" => Some(Format::Json),
                    other => {
                        return Err(usage(format!(
                            "invalid value for --format: '{other}' (line or json)"
                        )));
                    }
                }
            }
            "--stream" => self.streams = Some(string_value(parser, flag)?),
            "--base-url" => self.base_url = Some(string_value(parser, flag)?),
            "--url" => self.url = Some(string_value(parser, flag)?),
            "--output-dir" => self.output_dir = Some(parser.value()?.into()),
            "--since" => self.since_ms = Some(parse_since(&string_value(parser, flag)?)?),
            "--user-agent" => self.user_agent = Some(string_value(parser, flag)?),
            "--ca-file" => self.ca_file = Some(parser.value()?.into()),
            "--idle-timeout" => self.idle_timeout_secs = Some(number(parser, flag, 1, 86_400)?),
            "--max-events" => self.max_events = Some(number(parser, flag, 1, u64::MAX)?),
            "--max-event-bytes" => {
                self.max_event_bytes = Some(number(parser, flag, 1024, 1 << 30)? as usize)
            }
            "--level" => self.level = Some(number(parser, flag, 0, 9)? as u32),
            "--keep-canary" => self.keep_canary = true,
            "--rotate-minute" => self.rotate_minute = Some(number_or_off(parser, flag, 0, 59)?),
            "--rotate-events" => {
                self.rotate_events = Some(number_or_off(parser, flag, 1, u64::MAX)?)
            }
            "--rotate-bytes" => self.rotate_bytes = Some(number_or_off(parser, flag, 1, u64::MAX)?),
            "--on-ready" => self.on_ready = Some(parser.value()?),
            "--naming" => {
                self.naming_wikistreamreader = match string_value(parser, flag)?.as_str() {
                    "ours" => false,
                    "wikistreamreader" => true,
                    other => {
                        return Err(usage(format!(
                            "invalid value for --naming: '{other}' (ours or wikistreamreader)"
                        )));
                    }
                }
            }
            "--checkpoint-interval" => {
                self.checkpoint_interval = Some(seconds_or_off(parser, flag)?)
            }
            "--gap-warn" => self.gap_warn_secs = Some(number(parser, flag, 1, 31_536_000)?),
            "--status-port" | "--status_port" => {
                self.status_port = Some(number(parser, flag, 0, 65_535)? as u16)
            }
            "--status-addr" => {
                let text = string_value(parser, flag)?;
                if text.parse::<std::net::IpAddr>().is_err() {
                    return Err(usage(format!(
                        "invalid value for {flag}: '{text}' (an IP address)"
                    )));
                }
                self.status_addr = Some(text);
            }
            "--max-silence" => self.max_silence_secs = Some(number(parser, flag, 1, 31_536_000)?),
            "--keep-days" => self.keep_days = Some(number(parser, flag, 1, 36_500)?),
            "--max-archive-bytes" => {
                self.max_archive_bytes = Some(number(parser, flag, 1, u64::MAX)?)
            }
            "--log-timestamps" => {
                self.log_timestamps = match string_value(parser, flag)?.as_str() {
                    "on" => Some(true),
                    "off" => Some(false),
                    other => {
                        return Err(usage(format!(
                            "invalid value for {flag}: '{other}' (on or off)"
                        )));
                    }
                }
            }
            "-v" | "--verbose" => self.verbosity += 1,
            "-q" | "--quiet" => self.verbosity -= 1,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn build(self) -> Result<Command, Error> {
        let format = self.format.unwrap_or(Format::Line);
        let output = match (self.tail, self.tee) {
            (true, _) => Output::Print(format),
            (false, true) => Output::ArchiveAndPrint(format),
            (false, false) if self.format.is_some() => {
                return Err(usage("--format needs --tee (or use 'tail')"));
            }
            (false, false) => Output::Archive,
        };
        let source = match (self.url, self.streams) {
            (Some(_), Some(_)) => return Err(usage("--url and --stream cannot be used together")),
            (Some(url), None) => {
                if self.base_url.is_some() {
                    return Err(usage("--url and --base-url cannot be used together"));
                }
                check_url("--url", &url)?;
                Source::Url(url)
            }
            (None, streams) => {
                let streams = streams.unwrap_or_else(|| "recentchange".to_string());
                let names = split_list(&streams);
                if names.is_empty() {
                    return Err(usage("--stream needs at least one stream name"));
                }
                if let Some(bad) = names.iter().find(|n| !is_stream_name(n)) {
                    return Err(usage(format!(
                        "invalid value for --stream: '{bad}' (letters, digits, '-', '_' and '.' only)"
                    )));
                }
                let base_url = self
                    .base_url
                    .unwrap_or_else(|| "https://stream.wikimedia.org/v2/stream/".to_string());
                check_url("--base-url", &base_url)?;
                Source::Streams { names, base_url }
            }
        };
        let user_agent = self
            .user_agent
            .unwrap_or_else(|| DEFAULT_USER_AGENT.to_string());
        if user_agent.trim().is_empty() || user_agent.chars().any(|c| c.is_control()) {
            return Err(usage(
                "invalid value for --user-agent: must be non-empty printable text",
            ));
        }
        Ok(Command::Run(Box::new(RunArgs {
            source,
            output_dir: self.output_dir.unwrap_or_else(|| PathBuf::from("archive")),
            since_ms: self.since_ms,
            user_agent,
            ca_file: self.ca_file,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.unwrap_or(120)),
            max_events: self.max_events,
            max_event_bytes: self.max_event_bytes.unwrap_or(8 << 20),
            level: self.level.unwrap_or(6),
            keep_canary: self.keep_canary,
            rotation: crate::archive::rotate::Policy {
                minute: self.rotate_minute.unwrap_or(Some(5)).map(|m| m as u8),
                max_events: self.rotate_events.unwrap_or(Some(500_000)),
                max_bytes: self.rotate_bytes.unwrap_or(None),
            },
            on_ready: self.on_ready,
            naming_wikistreamreader: self.naming_wikistreamreader,
            checkpoint_interval: self
                .checkpoint_interval
                .unwrap_or(Some(Duration::from_secs(5))),
            gap_warn: Duration::from_secs(self.gap_warn_secs.unwrap_or(120)),
            status_port: self.status_port,
            status_addr: self.status_addr.unwrap_or_else(|| "127.0.0.1".to_string()),
            max_silence: Duration::from_secs(self.max_silence_secs.unwrap_or(300)),
            retention: crate::archive::retention::Policy {
                keep_days: self.keep_days,
                max_bytes: self.max_archive_bytes,
            },
            log_timestamps: self.log_timestamps.unwrap_or(true),
            // `tail` shares the terminal with its events: connection news only with -v.
            verbosity: self.verbosity - i32::from(self.tail),
            filter: self.filter.build()?,
            output,
        })))
    }
}

fn run_cmd(mut parser: lexopt::Parser, mut run: RunBuilder) -> Result<Command, Error> {
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            other => {
                let flag = flag_name(&other);
                let unexpected = other.unexpected();
                if !run.take(&mut parser, &flag)? {
                    return Err(unexpected.into());
                }
            }
        }
    }
    run.build()
}

/// Collects the filter flags shared by `run`, `tail` and `cat`.
#[derive(Default)]
struct FilterBuilder {
    filter: Filter,
    no_bots: bool,
    bots_only: bool,
}

impl FilterBuilder {
    /// Consumes `flag` if it is a filter (with `--from`/`--to` only when `times` is set).
    fn take(
        &mut self,
        parser: &mut lexopt::Parser,
        flag: &str,
        times: bool,
    ) -> Result<bool, Error> {
        let filter = &mut self.filter;
        match flag {
            "--wiki" => filter.wikis = non_empty_list(parser, flag)?,
            "--type" => filter.types = non_empty_list(parser, flag)?,
            "--domain" => filter.domains = non_empty_list(parser, flag)?,
            "--namespace" => {
                filter.namespaces = non_empty_list(parser, flag)?
                    .iter()
                    .map(|n| {
                        n.parse::<i64>().map_err(|_| {
                            usage(format!(
                                "invalid value for --namespace: '{n}' (comma-separated numbers)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "--no-bots" => self.no_bots = true,
            "--bots-only" => self.bots_only = true,
            "--match" => {
                let text = string_value(parser, flag)?;
                if text.is_empty() {
                    return Err(usage("invalid value for --match: the pattern is empty"));
                }
                let pattern = regex_lite::Regex::new(&text)
                    .map_err(|e| usage(format!("invalid value for --match: '{text}': {e}")))?;
                filter.pattern = Some(pattern);
            }
            "--invert-match" => filter.invert_match = true,
            "--from" if times => {
                filter.from_ms = Some(parse_time(flag, &string_value(parser, flag)?)?)
            }
            "--to" if times => filter.to_ms = Some(parse_time(flag, &string_value(parser, flag)?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn build(mut self) -> Result<Filter, Error> {
        self.filter.bots = match (self.no_bots, self.bots_only) {
            (true, true) => {
                return Err(usage("--no-bots and --bots-only cannot be used together"));
            }
            (true, false) => Some(Bots::Exclude),
            (false, true) => Some(Bots::Only),
            (false, false) => None,
        };
        if self.filter.invert_match && self.filter.pattern.is_none() {
            return Err(usage("--invert-match needs --match REGEX"));
        }
        if let (Some(from), Some(to)) = (self.filter.from_ms, self.filter.to_ms)
            && from >= to
        {
            return Err(usage("--from must be earlier than --to"));
        }
        Ok(self.filter)
    }
}

fn non_empty_list(parser: &mut lexopt::Parser, flag: &str) -> Result<Vec<String>, Error> {
    let values = split_list(&string_value(parser, flag)?);
    if values.is_empty() {
        return Err(usage(format!("{flag} needs at least one value")));
    }
    Ok(values)
}

fn cat_cmd(mut parser: lexopt::Parser) -> Result<Command, Error> {
    let mut paths = Vec::new();
    let mut filter = FilterBuilder::default();
    let mut count = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("count") => count = true,
            Value(path) => paths.push(PathBuf::from(path)),
            other => {
                let flag = flag_name(&other);
                let unexpected = other.unexpected();
                if !filter.take(&mut parser, &flag, true)? {
                    return Err(unexpected.into());
                }
            }
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    Ok(Command::Cat(CatArgs {
        paths,
        filter: filter.build()?,
        count,
    }))
}

fn verify_cmd(mut parser: lexopt::Parser) -> Result<Command, Error> {
    let mut dir = None;
    let mut gap = Duration::from_secs(300);
    let mut offset_slack = 1;
    let mut json = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("gap") => gap = Duration::from_secs(number(&mut parser, "--gap", 1, 31_536_000)?),
            Long("offset-slack") => {
                offset_slack = number(&mut parser, "--offset-slack", 0, u64::MAX)?
            }
            Long("json") => json = true,
            Value(path) if dir.is_none() => dir = Some(PathBuf::from(path)),
            other => return Err(other.unexpected().into()),
        }
    }
    let dir = dir.ok_or_else(|| usage("verify needs an archive directory"))?;
    Ok(Command::Verify(VerifyArgs {
        dir,
        gap,
        offset_slack,
        json,
    }))
}

fn parse_cmd(mut parser: lexopt::Parser) -> Result<Command, Error> {
    let mut input = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(path) if input.is_none() => input = Some(PathBuf::from(path)),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Command::Parse(ParseArgs { input }))
}

fn serve_cmd(mut parser: lexopt::Parser) -> Result<Command, Error> {
    let mut args = ServeArgs {
        inputs: Vec::new(),
        addr: "127.0.0.1".to_string(),
        port: 0,
        retry_ms: None,
        rate: None,
        disconnect_every: None,
        cut_mid_event: false,
        stall_after: None,
        status_first: None,
        keepalive: Duration::from_secs(15),
        id_offsets: false,
        max_connections_per_ip: None,
        chaos_seed: None,
        verbosity: 0,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("input") => args.inputs.push(PathBuf::from(parser.value()?)),
            Long("addr") => args.addr = string_value(&mut parser, "--addr")?,
            Long("port") => args.port = number(&mut parser, "--port", 0, 65_535)? as u16,
            Long("retry") => args.retry_ms = Some(number(&mut parser, "--retry", 0, 3_600_000)?),
            Long("rate") => {
                let rate: f64 = parser.value()?.parse()?;
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err(usage("invalid value for --rate: must be a positive number"));
                }
                args.rate = Some(rate);
            }
            Long("disconnect-every") => {
                args.disconnect_every =
                    Some(number(&mut parser, "--disconnect-every", 1, u64::MAX)?);
            }
            Long("cut-mid-event") => args.cut_mid_event = true,
            Long("id-offsets") => args.id_offsets = true,
            // Timestamps are the default now, as on EventStreams; the flag stays accepted.
            Long("id-timestamps") => args.id_offsets = false,
            Long("max-connections-per-ip") => {
                args.max_connections_per_ip =
                    Some(number(&mut parser, "--max-connections-per-ip", 1, 100_000)? as usize)
            }
            Long("chaos") => args.chaos_seed = Some(number(&mut parser, "--chaos", 0, u64::MAX)?),
            Long("stall-after") => {
                args.stall_after = Some(number(&mut parser, "--stall-after", 0, u64::MAX)?)
            }
            Long("status-first") => {
                args.status_first = Some(number(&mut parser, "--status-first", 100, 599)? as u16)
            }
            Long("keepalive") => {
                args.keepalive = Duration::from_secs(number(&mut parser, "--keepalive", 1, 3600)?)
            }
            Short('v') | Long("verbose") => args.verbosity += 1,
            Short('q') | Long("quiet") => args.verbosity -= 1,
            other => return Err(other.unexpected().into()),
        }
    }
    if args.inputs.is_empty() {
        return Err(usage("serve needs --input PATH"));
    }
    if args.cut_mid_event && args.disconnect_every.is_none() {
        return Err(usage("--cut-mid-event needs --disconnect-every N"));
    }
    Ok(Command::Serve(args))
}

/// `--name` or `-c` for an option; empty for a positional value (never a `run` option).
fn flag_name(arg: &lexopt::Arg<'_>) -> String {
    match arg {
        Long(name) => format!("--{name}"),
        Short(c) => format!("-{c}"),
        Value(_) => String::new(),
    }
}

fn string_value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, Error> {
    parser.value()?.into_string().map_err(|raw| {
        usage(format!(
            "invalid value for {flag}: '{}' is not valid UTF-8",
            raw.to_string_lossy()
        ))
    })
}

/// Reads a whole number in `min..=max` for `flag`.
fn number(parser: &mut lexopt::Parser, flag: &str, min: u64, max: u64) -> Result<u64, Error> {
    let text = string_value(parser, flag)?;
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == u64::MAX => Err(usage(format!(
            "invalid value for {flag}: '{text}' (a whole number >= {min})"
        ))),
        _ => Err(usage(format!(
            "invalid value for {flag}: '{text}' (a whole number from {min} to {max})"
        ))),
    }
}

/// Seconds (fractions allowed, from 0.05 to a day), or `off` (`None`).
fn seconds_or_off(parser: &mut lexopt::Parser, flag: &str) -> Result<Option<Duration>, Error> {
    let text = string_value(parser, flag)?;
    if text == "off" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(secs) if (0.05..=86_400.0).contains(&secs) => Ok(Some(Duration::from_secs_f64(secs))),
        _ => Err(usage(format!(
            "invalid value for {flag}: '{text}' (seconds from 0.05 to 86400, or off)"
        ))),
    }
}

/// A number in `min..=max`, or `off` (`None`).
fn number_or_off(
    parser: &mut lexopt::Parser,
    flag: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, Error> {
    let text = string_value(parser, flag)?;
    if text == "off" {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(usage(format!(
            "invalid value for {flag}: '{text}' (a whole number from {min} to {max}, or off)"
        ))),
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn is_stream_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_url(flag: &str, url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(usage(format!(
            "invalid value for {flag}: '{url}' (an http:// or https:// URL)"
        ))),
    }
}

/// `--since`: milliseconds since the epoch, or an RFC 3339 date-time.
pub fn parse_since(text: &str) -> Result<i64, Error> {
    parse_time("--since", text)
}

/// A time for `flag`: milliseconds since the epoch, or an RFC 3339 date-time.
fn parse_time(flag: &str, text: &str) -> Result<i64, Error> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| usage(format!("invalid value for {flag}: '{text}' is too large")));
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    match parsed {
        Ok(t) => Ok((t.unix_timestamp_nanos() / 1_000_000) as i64),
        Err(_) => Err(usage(format!(
            "invalid value for {flag}: '{text}' (milliseconds since the epoch, or RFC 3339 like 2025-01-31T12:00:00Z)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Error> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args) {
            Ok(Command::Run(run)) => *run,
            other => panic!("expected run for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn run_is_the_default_and_has_defaults() {
        let run = run_args(&[]);
        assert_eq!(
            run.source,
            Source::Streams {
                names: vec!["recentchange".into()],
                base_url: "https://stream.wikimedia.org/v2/stream/".into()
            }
        );
        assert_eq!(run.output_dir, PathBuf::from("archive"));
        assert_eq!(run.level, 6);
        assert_eq!(run.idle_timeout, Duration::from_secs(120));
        assert_eq!(run.max_event_bytes, 8 << 20);
        assert!(run.user_agent.starts_with("wikistream-archiver/"));
        assert_eq!(run.rotation.minute, Some(5));
        assert_eq!(run.rotation.max_events, Some(500_000));
        assert_eq!(run.rotation.max_bytes, None);
        assert_eq!(run.checkpoint_interval, Some(Duration::from_secs(5)));
        assert!(!run.naming_wikistreamreader);
    }

    #[test]
    fn off_values() {
        let run = run_args(&[
            "--rotate-minute",
            "off",
            "--rotate-events",
            "off",
            "--checkpoint-interval",
            "off",
            "--rotate-bytes",
            "1000",
        ]);
        assert_eq!(run.rotation.minute, None);
        assert_eq!(run.rotation.max_events, None);
        assert_eq!(run.rotation.max_bytes, Some(1000));
        assert_eq!(run.checkpoint_interval, None);
        assert!(parse(&["--rotate-minute", "60"]).is_err());
        assert!(parse(&["--naming", "python"]).is_err());
    }

    #[test]
    fn explicit_run_takes_the_same_flags() {
        let run = run_args(&[
            "-v",
            "run",
            "--stream",
            "recentchange,page-create",
            "--level",
            "9",
            "-v",
        ]);
        assert_eq!(run.verbosity, 2);
        assert_eq!(run.level, 9);
        match run.source {
            Source::Streams { names, .. } => assert_eq!(names, ["recentchange", "page-create"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn since_accepts_ms_and_rfc3339() {
        assert_eq!(parse_since("1732352400123").unwrap(), 1_732_352_400_123);
        assert_eq!(
            parse_since("2024-11-23T09:00:00Z").unwrap(),
            1_732_352_400_000
        );
        assert_eq!(
            parse_since("2024-11-23T10:00:00+01:00").unwrap(),
            1_732_352_400_000
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--level", "12"], "--level"),
            (&["--idle-timeout", "x"], "--idle-timeout"),
            (&["--bogus"], "--bogus"),
            (&["--url", "ftp://x", "--stream", "a"], "--url"),
            (&["--url", "ftp://x"], "--url"),
            (&["--stream", "a b"], "--stream"),
            (&["serve"], "--input"),
            (
                &["serve", "--input", "x", "--cut-mid-event"],
                "--disconnect-every",
            ),
            (&["frobnicate"], "frobnicate"),
        ];
        for (args, needle) in cases {
            let message = parse(args).expect_err("should fail").to_string();
            assert!(message.contains(needle), "{args:?}: {message}");
            assert!(message.contains("--help"), "{args:?}: {message}");
        }
    }

    #[test]
    fn help_lists_every_long_flag_in_this_file() {
        // Every `Long("…")` and `"--…" =>` pattern accepted above must be documented in HELP.
        let source = include_str!("cli.rs");
        let source = &source[..source.find("#[cfg(test)]").expect("tests at the end")];
        let mut n_flags = 0;
        for (marker, prefix) in [("Long(\"", "--"), ("\"--", "--")] {
            for piece in source.split(marker).skip(1) {
                let name = &piece[..piece.find('"').expect("closing quote")];
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                    continue;
                }
                n_flags += 1;
                assert!(
                    HELP.contains(&format!("{prefix}{name}")),
                    "{prefix}{name} missing from HELP"
                );
            }
        }
        assert!(
            n_flags > 25,
            "found only {n_flags} flags: the scan is broken"
        );
    }
}
