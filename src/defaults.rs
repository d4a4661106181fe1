//! Every default of the command line, once: `config` builds the settings from these, and
//! `cli`'s help text states them from these same constants (a test in `config` holds the two
//! together). Each constant says why it has its value.
//!
//! A leaf module: it imports nothing of ours.

/// The stream most people archive.
pub const STREAM: &str = "recentchange";
/// Wikimedia's EventStreams service; stream names are appended.
pub const BASE_URL: &str = "https://stream.wikimedia.org/v2/stream/";
/// Relative to the working directory, as a supervisor's `chdir` sets it.
pub const OUTPUT_DIR: &str = "archive";
/// Descriptive, as Wikimedia's User-Agent policy asks; `--user-agent` adds contact details.
pub const USER_AGENT: &str = concat!(
    "wikistream-archiver/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/wikistream-archiver)"
);
/// The server sends a keep-alive comment well within this; two minutes of nothing is a stall.
pub const IDLE_TIMEOUT_SECS: u64 = 120;
/// Real events are 0.5-2 KB; 8 MiB leaves room for any real one and bounds memory.
pub const MAX_EVENT_BYTES: usize = 8 << 20;
/// The level with the least CPU whose output is still no larger than `gzip -6`'s on the bench
/// corpus (`make bench` prints the comparison of this level and its neighbours with `gzip -6`).
pub const LEVEL: u32 = 5;
/// The Python archiver we replace completes its file at minute 5 of every hour.
pub const ROTATE_MINUTE: u8 = 5;
/// Also the Python archiver's: about two hours of the live stream per file at most.
pub const ROTATE_EVENTS: u64 = 500_000;
/// Five seconds of events at most are fetched again after a crash; each costs one fsync.
pub const CHECKPOINT_INTERVAL_SECS: u64 = 5;
/// A reconnect normally resumes within seconds; two minutes of `meta.dt` missing is news.
pub const GAP_WARN_SECS: u64 = 120;
/// Health is for this machine unless the operator says otherwise.
pub const STATUS_ADDR: &str = "127.0.0.1";
/// Canaries arrive at least hourly and edits every second: five silent minutes mean trouble.
pub const MAX_SILENCE_SECS: u64 = 300;
/// An `--on-ready` program that has not finished in ten minutes is taken to hang.
pub const ON_READY_TIMEOUT_SECS: u64 = 600;
/// Files complete hourly and ship in seconds: an hour-old unshipped file means shipping is down.
pub const MAX_SHIP_LAG_SECS: u64 = 3600;
/// The region of S3 requests when AWS_REGION does not say (AWS's own default).
pub const S3_REGION: &str = "us-east-1";
/// Timestamps on log lines unless a supervisor's logger adds its own.
pub const LOG_TIMESTAMPS: bool = true;
/// `cat` reads the current directory when given no path.
pub const CAT_PATH: &str = ".";
/// `verify`: five minutes without an event is an outage, not a quiet moment.
pub const VERIFY_GAP_SECS: u64 = 300;
/// `verify`: a dropped canary leaves a one-offset hole.
pub const OFFSET_SLACK: u64 = 1;
/// `serve` listens on loopback only unless asked.
pub const SERVE_ADDR: &str = "127.0.0.1";
/// `serve` takes any free port (printed at start) unless asked.
pub const SERVE_PORT: u16 = 0;
/// EventStreams sends a comment about this often when nothing happens.
pub const KEEPALIVE_SECS: u64 = 15;
/// `verify` remembers this many recent ids to find duplicates: about 25 MB, ninety minutes of the
/// live stream, so duplicates from reconnects and restarts (seconds apart) are all found.
pub const DUPLICATE_WINDOW: usize = 1 << 19;
/// `serve`'s `Retry-After` on 429 and 503: short, so that tests and demos move on.
pub const SERVE_RETRY_AFTER_SECS: u64 = 1;
/// Streams beyond the asked-for ones that one run writes (partitioned layout): a multi-stream
/// connection names its streams, so any more are a misconfigured or hostile upstream.
pub const MAX_STREAMS: u64 = 32;
/// Event files open at once: one per stream, two around midnight, for a few streams. Each holds
/// a compressor of some hundreds of KB, so this bounds what a hostile upstream can make the
/// archiver hold (a few MB), far below the packaged `LimitNOFILE=1024`; more streams still
/// work, with more, smaller files.
pub const MAX_OPEN_FILES: u64 = 8;
/// `serve`'s streams per client address: EventStreams has such a limit too (about two); 32 lets
/// several tools on one host share a replay, and bounds what one address can hold.
pub const SERVE_MAX_CONNECTIONS_PER_IP: u64 = 32;
