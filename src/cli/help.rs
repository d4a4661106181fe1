//! The help text. Every default in it comes from `config::defaults`, the same constants the
//! settings are built from; `config`'s tests hold each flag's entry to its constant, and `cli`'s
//! tests check that every flag the parser accepts is listed.

use crate::config::defaults as d;

/// What a help request is about: the program (and `run`), or one subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Run,
    Tail,
    Cat,
    Verify,
    Parse,
    Serve,
}

impl Topic {
    /// The subcommand named `word`.
    pub fn of(word: &str) -> Option<Topic> {
        Some(match word {
            "run" => Topic::Run,
            "tail" => Topic::Tail,
            "cat" => Topic::Cat,
            "verify" => Topic::Verify,
            "parse" => Topic::Parse,
            "serve" => Topic::Serve,
            _ => return None,
        })
    }

    /// The sections of the full text that make up this topic's help.
    fn sections(self) -> &'static [&'static str] {
        match self {
            Topic::Run => &["USAGE", "RUN OPTIONS", "FILTERS", "EXIT CODES"],
            Topic::Tail => &["TAIL", "FILTERS", "EXIT CODES"],
            Topic::Cat => &["CAT", "FILTERS", "EXIT CODES"],
            Topic::Verify => &["VERIFY", "EXIT CODES"],
            Topic::Parse => &["PARSE", "EXIT CODES"],
            Topic::Serve => &["SERVE OPTIONS", "EXIT CODES"],
        }
    }
}

/// The help for `topic`: `None` (`--help`) lists the subcommands and the flags of `run`, the
/// default; a subcommand's shows only its own usage, flags and defaults.
pub fn help_for(topic: Option<Topic>) -> String {
    let full = help();
    let mut sections = full.split("\n\n");
    let title = sections.next().unwrap_or_default();
    let sections: Vec<&str> = sections.collect();
    let mut out = format!("{title}\n");
    for wanted in topic.unwrap_or(Topic::Run).sections() {
        if let Some(section) = sections.iter().find(|s| s.starts_with(wanted)) {
            out.push('\n');
            out.push_str(section.trim_end());
            out.push('\n');
        }
    }
    if topic.is_none() {
        out.push_str(
            "\nMore: wikistream-archiver help tail|cat|verify|parse|serve (or SUBCOMMAND --help)\n",
        );
    }
    out
}

/// The long flags a topic's help lists (for suggestions on a typo).
pub fn flags_of(topic: Topic) -> Vec<String> {
    let text = help_for(Some(topic));
    let mut flags: Vec<String> = text
        .split(|c: char| !(c.is_ascii_lowercase() || c == '-' || c == '_'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(String::from)
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// The whole help text, every section, with every default stated from `config::defaults`.
/// A test checks that every flag the parser accepts is listed here.
pub fn help() -> String {
    format!(
        "\
wikistream-archiver: archive Wikimedia EventStreams as rotating gzip NDJSON files

USAGE:
    wikistream-archiver [run] [OPTIONS]        archive a stream (the default)
    wikistream-archiver tail [OPTIONS]         print a stream's events instead of archiving them
    wikistream-archiver cat [OPTIONS] [PATH..] print archived events (files or directories)
    wikistream-archiver verify [OPTIONS] DIR   check an archive directory for damage and gaps
    wikistream-archiver parse [FILE]           print the SSE events of FILE (or stdin) as JSON lines
    wikistream-archiver serve --input PATH..   replay archives as an EventStreams server
    wikistream-archiver help [SUBCOMMAND]      the help of one subcommand
    wikistream-archiver completions SHELL      print completions for bash, zsh or fish
    wikistream-archiver --version | --help

RUN OPTIONS:
    --stream NAMES          comma-separated stream names [default: {stream}]
    --base-url URL          where stream names are appended
                            [default: {base_url}]
    --url URL               full stream URL; replaces --stream and --base-url
    --output-dir DIR        where archive files are written [default: ./{output_dir}]
    --since TIME            on the first connection only, start at TIME
                            (milliseconds since the epoch, or RFC 3339 such as 2025-01-31T12:00:00Z)
    --user-agent UA         User-Agent header; put your contact here, as Wikimedia asks
                            [default: wikistream-archiver/VERSION (+https://github.com/wikistream-archiver)]
    --ca-file PEM           trust only the CA certificates in PEM (private servers)
                            [default: SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt,
                            else the Mozilla roots built in]
    --idle-timeout SECS     reconnect when no byte arrives for SECS seconds [default: {idle_timeout}]
    --max-events N          exit after archiving N events [default: unlimited]
    --max-event-bytes N     events larger than N bytes go to the rejects file [default: {max_event_bytes}]
    --level 0-9             gzip compression level [default: {level}]
    --keep-canary           archive canary events too (meta.domain == \"canary\") [default: drop]
    --rotate-minute M|off   complete the file at minute M of every UTC hour [default: {rotate_minute}]
    --rotate-events N|off   complete the file after N events [default: {rotate_events}]
    --rotate-bytes B|off    complete the file after B compressed bytes (checked as deflate emits
                            its blocks of some tens of KB) [default: off]
                            (SIGUSR1 and shutdown also complete the open file)
    --on-ready CMD          run CMD PATH KEY for each completed file: its path, and its key
                            relative to DIR (recentchange/date=2025-01-31/….ndjson.gz), e.g.
                            for an S3 key (no shell; archiving does not wait for it)
                            [default: none]
    --layout partitioned|flat
                            partitioned: DIR/STREAM/date=YYYY-MM-DD/ by the UTC date of
                            meta.dt, rejects in DIR/_rejects/; flat: all files in DIR. A
                            directory keeps the layout it was made with [default: partitioned
                            for a new directory, flat with --naming wikistreamreader]
    --naming ours|wikistreamreader
                            file names: ours (stream-UTCSTART-SEQ.ndjson.gz, .part while open) or
                            the Python archiver's (stream_START_SEQ.gz, .ready when complete)
                            [default: ours]
    --checkpoint-interval SECS|off
                            make the archive durable and record the resume position this often
                            (also at every new file and rotation) [default: {checkpoint_interval}]
    --gap-warn SECS         warn when a resumed stream jumps more than SECS in meta.dt [default: {gap_warn}]
    --status-port PORT|off  serve /check, /metrics and /status on PORT (alias --status_port;
                            0 picks a free port, logged at start; off or empty: none)
                            [default: off]
    --status-addr ADDR      address for --status-port; exposing it wider is your choice
                            [default: {status_addr}]
    --max-silence SECS      /check fails when no event (canaries count) came for SECS [default: {max_silence}]
    --keep-days D           delete completed files older than D days [default: keep all]
    --max-archive-bytes B   delete the oldest completed files while all exceed B bytes
                            [default: no limit]
    --log-timestamps on|off timestamps on log lines; off for journald or svlogd, which add
                            their own [default: {log_timestamps}]
    --tee                   also print each archived event on stdout (see --format)
    --format line|json      with --tee and tail: a readable line per event, or the data line
                            [default: line]
    -v, --verbose           more log output (repeat for more); RUST_LOG overrides
    -q, --quiet             less log output (repeat for less)
    Sizes take K, M, G, T (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024); durations
    take s, m, h, d (also ms, w); a bare number is in the unit the flag names. Where a flag
    takes off, an empty value means off too.

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
    the last {duplicate_window} events), offset jumps per topic-partition, and time gaps. Exit 1 when a
    file is damaged or an event is duplicated. A progress line shows on a terminal.
    --gap SECS              report meta.dt gaps longer than SECS [default: {verify_gap}]
    --offset-slack N        offset jumps over at most N offsets are not gaps: canaries, dropped
                            unless --keep-canary, leave single holes [default: {offset_slack}]
                            (archives made with filters have holes by design: use a large N)
    --json                  print the report as one JSON document

PARSE:
    wikistream-archiver parse [FILE]
    Reads raw SSE bytes and prints one JSON object per line: {{\"event\",\"data\",\"id\"}} for each
    dispatched event and {{\"retry\": MS}} for each valid retry field.

SERVE OPTIONS:
    --input PATH            an archive directory, or an NDJSON or NDJSON.gz file with one event
                            data line per line; repeat for more (required). /v2/stream/A,B
                            serves the events whose meta.stream is A or B (or mediawiki.A),
                            merged in meta.dt order; the streams on offer are those in the
                            first 1000 events of each input (see /_info)
    --addr ADDR             address to bind [default: {serve_addr}]
    --port PORT             port to bind, 0 for any free one [default: {serve_port}]
    --retry MS              send `retry: MS` at the start of every response [default: none]
    --rate N                send at most N events per second [default: unlimited]
    --disconnect-every N    close each connection after N events [default: never]
    --cut-mid-event         close in the middle of an event instead of between events
    --stall-after N         once, after N events, stop sending but keep the socket open
    --status-first CODE     answer the first request with CODE
    --status-later CODE     answer the second and third requests with CODE (a later failure)
    --retry-after SECS      the Retry-After of 429 and 503 answers [default: {retry_after}]
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
    --keepalive SECS        send a comment line after SECS seconds without events [default: {keepalive}]
    Prints `listening on ADDR:PORT` as its first line on stdout.

EXIT CODES:
    0 success, 1 runtime failure (verify: damage found), 2 usage error,
    75 another run holds the output directory
",
        stream = d::STREAM,
        base_url = d::BASE_URL,
        output_dir = d::OUTPUT_DIR,
        idle_timeout = d::IDLE_TIMEOUT_SECS,
        max_event_bytes = d::MAX_EVENT_BYTES,
        level = d::LEVEL,
        rotate_minute = d::ROTATE_MINUTE,
        rotate_events = d::ROTATE_EVENTS,
        checkpoint_interval = d::CHECKPOINT_INTERVAL_SECS,
        gap_warn = d::GAP_WARN_SECS,
        status_addr = d::STATUS_ADDR,
        max_silence = d::MAX_SILENCE_SECS,
        log_timestamps = if d::LOG_TIMESTAMPS { "on" } else { "off" },
        duplicate_window = d::DUPLICATE_WINDOW,
        verify_gap = d::VERIFY_GAP_SECS,
        offset_slack = d::OFFSET_SLACK,
        serve_addr = d::SERVE_ADDR,
        serve_port = d::SERVE_PORT,
        keepalive = d::KEEPALIVE_SECS,
        retry_after = d::SERVE_RETRY_AFTER_SECS,
    )
}
