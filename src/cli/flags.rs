//! Every flag, declared once, as data: its name, the value it takes, its help, its default
//! (from the `defaults` leaf) and the subcommands that take it. The parser, each subcommand's
//! help, the completions, the man page (made from the help) and the typo suggestions are all
//! made from `FLAGS`; `config` gives each flag its typed meaning.
//!
//! Data and lookups only: no parsing, no I/O.

use crate::defaults as d;

/// A subcommand, as far as the command line is concerned (also a help topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Run,
    Tail,
    Cat,
    Verify,
    Parse,
    Serve,
    Ship,
    Schema,
}

/// Which section of the help lists a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// RUN OPTIONS (`tail` takes some of them too).
    Run,
    /// FILTERS, shared by `run`, `tail` and `cat`.
    Filter,
    Cat,
    Verify,
    Serve,
    /// SHIPPING, taken by `run` (and the S3 ones by `ship`).
    Shipping,
    /// `ship`'s own.
    Ship,
    Schema,
}

/// A default as the help states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    Number(u64),
    Text(&'static str),
    /// A directory relative to the working directory (`./archive`).
    Relative(&'static str),
    OnOff(bool),
}

/// One flag of the command line.
#[derive(Debug)]
pub struct Flag {
    /// The long name, without `--`.
    pub long: &'static str,
    pub short: Option<char>,
    /// Another long spelling that is accepted (the Python archiver's `--status_port`).
    pub alias: Option<&'static str>,
    /// The value's name in the help (`SECS`, `0-9`); `None` for a switch.
    pub value: Option<&'static str>,
    /// The help text, one or more lines; `{default}` stands where `[default: …]` goes.
    pub help: &'static str,
    pub default: Option<Default>,
    /// The subcommands that take it.
    pub takes: &'static [Topic],
    pub group: Group,
}

const RUN_TAIL: &[Topic] = &[Topic::Run, Topic::Tail];
const RUN: &[Topic] = &[Topic::Run];
const FILTERS: &[Topic] = &[Topic::Run, Topic::Tail, Topic::Cat];
const RUN_TAIL_SERVE: &[Topic] = &[Topic::Run, Topic::Tail, Topic::Serve];
const CAT: &[Topic] = &[Topic::Cat];
const VERIFY: &[Topic] = &[Topic::Verify];
const SERVE: &[Topic] = &[Topic::Serve];
const RUN_SHIP: &[Topic] = &[Topic::Run, Topic::Ship];
const SHIP: &[Topic] = &[Topic::Ship];
const SCHEMA: &[Topic] = &[Topic::Schema];

/// A flag with its value name and help; the rest is set by the helpers below.
const fn flag(long: &'static str, value: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        alias: None,
        value,
        help,
        default: None,
        takes: RUN,
        group: Group::Run,
    }
}

impl Flag {
    const fn takes(self, takes: &'static [Topic], group: Group) -> Flag {
        Flag {
            takes,
            group,
            ..self
        }
    }

    const fn default(self, default: Default) -> Flag {
        Flag {
            default: Some(default),
            ..self
        }
    }

    const fn short(self, short: char) -> Flag {
        Flag {
            short: Some(short),
            ..self
        }
    }

    const fn alias(self, alias: &'static str) -> Flag {
        Flag {
            alias: Some(alias),
            ..self
        }
    }

    /// Whether `name` (a long name without `--`) names this flag.
    pub fn is_named(&self, name: &str) -> bool {
        self.long == name || self.alias == Some(name)
    }
}

use self::Default::{Number, OnOff, Relative, Text};

/// Every flag, in the order the help lists them.
pub static FLAGS: &[Flag] = &[
    // RUN OPTIONS; those `tail` takes too first.
    flag(
        "stream",
        Some("NAMES"),
        "comma-separated stream names {default}",
    )
    .default(Text(d::STREAM))
    .takes(RUN_TAIL, Group::Run),
    flag(
        "base-url",
        Some("URL"),
        "where stream names are appended\n{default}",
    )
    .default(Text(d::BASE_URL))
    .takes(RUN_TAIL, Group::Run),
    flag(
        "url",
        Some("URL"),
        "full stream URL; replaces --stream and --base-url",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "output-dir",
        Some("DIR"),
        "where archive files are written {default}",
    )
    .default(Relative(d::OUTPUT_DIR)),
    flag(
        "since",
        Some("TIME"),
        "on the first connection only, start at TIME\n\
         (milliseconds since the epoch, or RFC 3339 such as 2025-01-31T12:00:00Z)",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "user-agent",
        Some("UA"),
        "User-Agent header; put your contact here, as Wikimedia asks\n\
         [default: wikistream-archiver/VERSION (+https://github.com/wikistream-archiver)]",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "ca-file",
        Some("PEM"),
        "trust only the CA certificates in PEM (private servers)\n\
         [default: SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt,\n\
         else the Mozilla roots built in]",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "idle-timeout",
        Some("SECS"),
        "reconnect when no byte arrives for SECS seconds {default}",
    )
    .default(Number(d::IDLE_TIMEOUT_SECS))
    .takes(RUN_TAIL, Group::Run),
    flag(
        "max-events",
        Some("N"),
        "exit after archiving N events [default: unlimited]",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "max-event-bytes",
        Some("N"),
        "events larger than N bytes go to the rejects file {default}",
    )
    .default(Number(d::MAX_EVENT_BYTES as u64))
    .takes(RUN_TAIL, Group::Run),
    flag("level", Some("0-9"), "gzip compression level {default}").default(Number(d::LEVEL as u64)),
    flag(
        "keep-canary",
        None,
        "archive canary events too (meta.domain == \"canary\") [default: drop]",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "rotate-minute",
        Some("M|off"),
        "complete the file at minute M of every UTC hour {default}",
    )
    .default(Number(d::ROTATE_MINUTE as u64)),
    flag(
        "rotate-events",
        Some("N|off"),
        "complete the file after N events {default}",
    )
    .default(Number(d::ROTATE_EVENTS)),
    flag(
        "rotate-bytes",
        Some("B|off"),
        "complete the file after B compressed bytes (checked as deflate emits\n\
         its blocks of some tens of KB) [default: off]\n\
         (SIGUSR1 and shutdown also complete the open file)",
    ),
    flag(
        "layout",
        Some("partitioned|flat"),
        "partitioned: DIR/STREAM/date=YYYY-MM-DD/ by the UTC date of\n\
         meta.dt, rejects in DIR/_rejects/; flat: all files in DIR. A\n\
         directory keeps the layout it was made with [default: partitioned\n\
         for a new directory, flat with --naming wikistreamreader]",
    ),
    flag(
        "naming",
        Some("ours|wikistreamreader"),
        "file names: ours (stream-UTCSTART-SEQ.ndjson.gz, .part while open) or\n\
         the Python archiver's (stream_START_SEQ.gz, .ready when complete)\n\
         [default: ours]",
    ),
    flag(
        "checkpoint-interval",
        Some("SECS|off"),
        "make the archive durable and record the resume position this often\n\
         (also at every new file and rotation) {default}",
    )
    .default(Number(d::CHECKPOINT_INTERVAL_SECS)),
    flag(
        "gap-warn",
        Some("SECS"),
        "warn when a resumed stream jumps more than SECS in meta.dt {default}",
    )
    .default(Number(d::GAP_WARN_SECS)),
    flag(
        "status-port",
        Some("PORT|off"),
        "serve /check, /metrics and /status on PORT (alias --status_port;\n\
         0 picks a free port, logged at start; off or empty: none)\n\
         [default: off]",
    )
    .alias("status_port"),
    flag(
        "status-addr",
        Some("ADDR"),
        "address for --status-port; exposing it wider is your choice\n{default}",
    )
    .default(Text(d::STATUS_ADDR)),
    flag(
        "max-silence",
        Some("SECS"),
        "/check fails when no event (canaries count) came for SECS {default}",
    )
    .default(Number(d::MAX_SILENCE_SECS)),
    flag(
        "max-streams",
        Some("N"),
        "partitioned: write at most N streams beyond those asked for; the events\n\
         of any more go to the rejects (too_many_streams) {default}",
    )
    .default(Number(d::MAX_STREAMS)),
    flag(
        "max-open-files",
        Some("N"),
        "keep at most N event files open at once (1-256); the least recently\n\
         written one is completed to open another {default}",
    )
    .default(Number(d::MAX_OPEN_FILES)),
    flag(
        "keep-days",
        Some("D"),
        "delete completed files older than D days [default: keep all]",
    ),
    flag(
        "max-archive-bytes",
        Some("B"),
        "delete the oldest completed files while all exceed B bytes\n\
         [default: no limit]",
    ),
    flag(
        "log-timestamps",
        Some("on|off"),
        "timestamps on log lines; off for journald or svlogd, which add\n\
         their own {default}",
    )
    .default(OnOff(d::LOG_TIMESTAMPS))
    .takes(RUN_TAIL, Group::Run),
    flag(
        "tee",
        None,
        "also print each archived event on stdout (see --format)",
    ),
    flag(
        "format",
        Some("line|json"),
        "with --tee and tail: a readable line per event, or the data line\n\
         [default: line]",
    )
    .takes(RUN_TAIL, Group::Run),
    flag(
        "verbose",
        None,
        "more log output (repeat for more); RUST_LOG overrides",
    )
    .short('v')
    .takes(RUN_TAIL_SERVE, Group::Run),
    flag("quiet", None, "less log output (repeat for less)")
        .short('q')
        .takes(RUN_TAIL_SERVE, Group::Run),
    // SHIPPING
    flag(
        "ship-to",
        Some("s3://BUCKET/PREFIX"),
        "upload each completed file to PREFIX/<its key under DIR>, exactly\n\
         once, from a helper thread; rejects under PREFIX/_rejects/, a day's\n\
         _SUCCESS after its files [default: none]",
    )
    .takes(RUN, Group::Shipping),
    flag(
        "on-ready",
        Some("CMD"),
        "run CMD PATH KEY for each completed file (its path, and its key\n\
         relative to DIR: recentchange/date=2025-01-31/….ndjson.gz), one at\n\
         a time, no shell; delivered when it exits 0, else run again later,\n\
         across restarts: CMD must be idempotent for a KEY [default: none]",
    )
    .takes(RUN, Group::Shipping),
    flag(
        "on-ready-timeout",
        Some("SECS"),
        "kill an --on-ready CMD still running after SECS, and try it\n\
         again later {default}",
    )
    .default(Number(d::ON_READY_TIMEOUT_SECS))
    .takes(RUN, Group::Shipping),
    flag(
        "max-ship-lag",
        Some("SECS"),
        "/check fails when a file completed SECS ago is not shipped yet\n\
         {default}",
    )
    .default(Number(d::MAX_SHIP_LAG_SECS))
    .takes(RUN, Group::Shipping),
    flag(
        "s3-endpoint",
        Some("URL"),
        "S3-compatible endpoint, path-style (http://127.0.0.1:3900)\n\
         [default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS]",
    )
    .takes(RUN_SHIP, Group::Shipping),
    flag(
        "s3-region",
        Some("NAME"),
        "the region requests are signed for [default: AWS_REGION, else\n\
         us-east-1]",
    )
    .takes(RUN_SHIP, Group::Shipping),
    flag(
        "s3-credentials",
        Some("FILE"),
        "read the keys from FILE (as ~/.aws/credentials, profile AWS_PROFILE)\n\
         before every request [default: AWS_ACCESS_KEY_ID and\n\
         AWS_SECRET_ACCESS_KEY, then $CREDENTIALS_DIRECTORY/s3-credentials,\n\
         then ~/.aws/credentials]",
    )
    .takes(RUN_SHIP, Group::Shipping),
    // SHIP
    flag(
        "to",
        Some("s3://BUCKET/PREFIX"),
        "the bucket and prefix to ship to (required)",
    )
    .takes(SHIP, Group::Ship),
    flag(
        "dry-run",
        None,
        "print what would be uploaded, upload nothing",
    )
    .takes(SHIP, Group::Ship),
    flag(
        "check",
        None,
        "upload nothing: list the completed files missing from the bucket or\n\
         different there (size, SHA-256); exit 1 if any",
    )
    .takes(SHIP, Group::Ship),
    // SCHEMA
    flag(
        "engine",
        Some("duckdb|spark|athena"),
        "print only this engine's definitions [default: all three]",
    )
    .takes(SCHEMA, Group::Schema),
    flag(
        "location",
        Some("s3://BUCKET/PREFIX"),
        "athena: where --ship-to put the archive [default: s3://BUCKET/PREFIX]",
    )
    .takes(SCHEMA, Group::Schema),
    // FILTERS
    flag(
        "wiki",
        Some("LIST"),
        "keep events whose wiki is listed (enwiki,dewiki)",
    )
    .takes(FILTERS, Group::Filter),
    flag(
        "type",
        Some("LIST"),
        "keep events of these types (edit,new,log,categorize)",
    )
    .takes(FILTERS, Group::Filter),
    flag(
        "domain",
        Some("LIST"),
        "keep events of these meta.domain values and their subdomains\n\
         (wikipedia.org keeps en.wikipedia.org)",
    )
    .takes(FILTERS, Group::Filter),
    flag(
        "namespace",
        Some("LIST"),
        "keep events in these namespace numbers (0,14)",
    )
    .takes(FILTERS, Group::Filter),
    flag("no-bots", None, "leave out events with bot: true").takes(FILTERS, Group::Filter),
    flag("bots-only", None, "keep only events with bot: true").takes(FILTERS, Group::Filter),
    flag(
        "match",
        Some("REGEX"),
        "keep events whose raw data line matches REGEX",
    )
    .takes(FILTERS, Group::Filter),
    flag(
        "invert-match",
        None,
        "with --match: keep events that do not match",
    )
    .takes(FILTERS, Group::Filter),
    // CAT
    flag(
        "from",
        Some("TIME"),
        "keep events with meta.dt at or after TIME (ms or RFC 3339)",
    )
    .takes(CAT, Group::Cat),
    flag("to", Some("TIME"), "keep events with meta.dt before TIME").takes(CAT, Group::Cat),
    flag(
        "count",
        None,
        "print the number of events per file and in total instead",
    )
    .takes(CAT, Group::Cat),
    // VERIFY
    flag(
        "gap",
        Some("SECS"),
        "report meta.dt gaps longer than SECS {default}",
    )
    .default(Number(d::VERIFY_GAP_SECS))
    .takes(VERIFY, Group::Verify),
    flag(
        "offset-slack",
        Some("N"),
        "offset jumps over at most N offsets are not gaps: canaries, dropped\n\
         unless --keep-canary, leave single holes {default}\n\
         (archives made with filters have holes by design: use a large N)",
    )
    .default(Number(d::OFFSET_SLACK))
    .takes(VERIFY, Group::Verify),
    flag("json", None, "print the report as one JSON document").takes(VERIFY, Group::Verify),
    // SERVE OPTIONS
    flag(
        "input",
        Some("PATH"),
        "an archive directory, or an NDJSON or NDJSON.gz file with one event\n\
         data line per line; repeat for more (required). /v2/stream/A,B\n\
         serves the events whose meta.stream is A or B (or mediawiki.A),\n\
         merged in meta.dt order; the streams on offer are those in the\n\
         first 1000 events of each input (see /_info)",
    )
    .takes(SERVE, Group::Serve),
    flag("addr", Some("ADDR"), "address to bind {default}")
        .default(Text(d::SERVE_ADDR))
        .takes(SERVE, Group::Serve),
    flag(
        "port",
        Some("PORT"),
        "port to bind, 0 for any free one {default}",
    )
    .default(Number(d::SERVE_PORT as u64))
    .takes(SERVE, Group::Serve),
    flag(
        "retry",
        Some("MS"),
        "send `retry: MS` at the start of every response [default: none]",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "rate",
        Some("N"),
        "send at most N events per second [default: unlimited]",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "disconnect-every",
        Some("N"),
        "close each connection after N events [default: never]",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "cut-mid-event",
        None,
        "close in the middle of an event instead of between events",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "stall-after",
        Some("N"),
        "once, after N events, stop sending but keep the socket open",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "status-first",
        Some("CODE"),
        "answer the first request with CODE",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "status-later",
        Some("CODE"),
        "answer the second and third requests with CODE (a later failure)",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "retry-after",
        Some("SECS"),
        "the Retry-After of 429 and 503 answers {default}",
    )
    .default(Number(d::SERVE_RETRY_AFTER_SECS))
    .takes(SERVE, Group::Serve),
    flag(
        "chaos",
        Some("SEED"),
        "each connection ends after 1-5000 events: closed, cut mid-event or\n\
         stalled, at random but reproducible from SEED (soak tests)",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "id-offsets",
        None,
        "ids carry Kafka offsets (meta.offset, else a count per topic) instead\n\
         of meta.dt timestamps; resuming by timestamp (the default, like\n\
         EventStreams today) resends events of the boundary millisecond",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "id-timestamps",
        None,
        "the default, accepted for old scripts",
    )
    .takes(SERVE, Group::Serve),
    flag(
        "max-connections-per-ip",
        Some("N"),
        "answer 429 to more than N open streams from one address\n\
         {default}",
    )
    .default(Number(d::SERVE_MAX_CONNECTIONS_PER_IP))
    .takes(SERVE, Group::Serve),
    flag(
        "keepalive",
        Some("SECS"),
        "send a comment line after SECS seconds without events {default}",
    )
    .default(Number(d::KEEPALIVE_SECS))
    .takes(SERVE, Group::Serve),
];

/// The flag `topic` takes by the long name (or alias) `name`.
pub fn by_long(topic: Topic, name: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.takes.contains(&topic) && f.is_named(name))
}

/// The flag `topic` takes by the short name `c`.
pub fn by_short(topic: Topic, c: char) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .find(|f| f.takes.contains(&topic) && f.short == Some(c))
}

/// The flags `topic` takes, in table order.
pub fn of(topic: Topic) -> impl Iterator<Item = &'static Flag> {
    FLAGS.iter().filter(move |f| f.takes.contains(&topic))
}

/// Every long spelling `topic` takes with its `--`, `--help` included (and `--version` at the
/// top level), sorted: for typo suggestions and completions.
pub fn long_names(topic: Topic) -> Vec<String> {
    let mut names: Vec<String> = of(topic)
        .flat_map(|f| [Some(f.long), f.alias])
        .flatten()
        .chain(["help"])
        .chain((topic == Topic::Run).then_some("version"))
        .map(|name| format!("--{name}"))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_declared_once_per_subcommand() {
        for topic in [
            Topic::Run,
            Topic::Tail,
            Topic::Cat,
            Topic::Verify,
            Topic::Parse,
            Topic::Serve,
            Topic::Ship,
            Topic::Schema,
        ] {
            let mut names = long_names(topic);
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "{topic:?} takes a name twice");
            let shorts: Vec<char> = of(topic).filter_map(|f| f.short).collect();
            let mut unique = shorts.clone();
            unique.dedup();
            assert_eq!(unique, shorts, "{topic:?}");
        }
    }

    #[test]
    fn names_are_lower_case_words() {
        for flag in FLAGS {
            assert!(
                !flag.long.is_empty()
                    && flag
                        .long
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                flag.long
            );
            assert!(!flag.takes.is_empty(), "{} is taken by nothing", flag.long);
            let placeholders = flag.help.matches("{default}").count();
            assert_eq!(
                placeholders,
                usize::from(flag.default.is_some()),
                "--{}: a default is stated exactly where `{{default}}` stands",
                flag.long
            );
        }
    }

    #[test]
    fn lookups_respect_the_subcommand() {
        assert!(by_long(Topic::Run, "output-dir").is_some());
        assert!(by_long(Topic::Tail, "output-dir").is_none());
        assert!(by_long(Topic::Run, "status_port").is_some_and(|f| f.long == "status-port"));
        assert!(by_long(Topic::Cat, "from").is_some());
        assert!(by_long(Topic::Run, "from").is_none());
        assert!(by_short(Topic::Serve, 'v').is_some());
        assert!(by_short(Topic::Cat, 'v').is_none());
        assert!(long_names(Topic::Run).contains(&"--version".to_string()));
    }
}
