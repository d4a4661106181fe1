//! From the raw command line to the typed settings each part takes: the client's, the
//! archive's, the session's, the health endpoint's, each tool's.
//!
//! This layer gives each flag of `cli`'s table its typed meaning, applies the defaults (from the
//! `defaults` leaf), checks every value (`values`) and every combination of flags, and is, with
//! `main.rs`, the only importer of `cli`. `run.rs` builds `run`'s and `tail`'s settings,
//! `tools.rs` the tools'. It does no I/O: nothing is opened or connected here.

mod run;
mod ship;
mod tools;
pub mod values;

use std::ffi::OsStr;
use std::time::Duration;

use crate::cli::{self, Args, Error};
use crate::defaults as d;
use crate::tools::{cat, parse, schema, serve, ship as ship_tool, verify};

/// What to do, with everything it needs.
#[derive(Debug)]
pub enum Command {
    Run(Box<crate::run::Config>, Logging),
    Cat(cat::Config),
    Verify(verify::Config),
    Parse(parse::Config),
    Serve(serve::Config, Logging),
    Ship(ship_tool::Config),
    Schema(schema::Config),
    /// The help of one subcommand, or of the program.
    Help(Option<cli::Topic>),
    /// A shell completion script.
    Completions(cli::Shell),
    Version,
}

/// How the process logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    /// Net verbosity: +1 per `-v`, -1 per `-q`, from the `info` level.
    pub verbosity: i32,
    pub timestamps: bool,
}

/// Parses argv and builds the settings; every error is a usage error.
// Not generic and never inlined: the binary's own crate is built for speed (see Cargo.toml), and
// the command line belongs with the rest of the library, built for size.
#[inline(never)]
pub fn from_args(args: Vec<std::ffi::OsString>) -> Result<Command, Error> {
    Ok(match cli::parse_args(args)? {
        cli::Command::Run(raw) => {
            let (cfg, logging) = run::config(&raw)?;
            Command::Run(Box::new(cfg), logging)
        }
        cli::Command::Cat(raw) => Command::Cat(tools::cat_config(raw)?),
        cli::Command::Verify(raw) => Command::Verify(tools::verify_config(raw)?),
        cli::Command::Parse(raw) => Command::Parse(parse::Config {
            input: raw.positionals.into_iter().next().map(Into::into),
            max_event_bytes: d::MAX_EVENT_BYTES,
        }),
        cli::Command::Serve(raw) => {
            let logging = Logging {
                verbosity: raw.verbosity(),
                timestamps: true,
            };
            Command::Serve(tools::serve_config(raw)?, logging)
        }
        cli::Command::Ship(raw) => Command::Ship(ship::tool_config(raw)?),
        cli::Command::Schema(raw) => Command::Schema(tools::schema_config(raw)?),
        cli::Command::Help(topic) => Command::Help(topic),
        cli::Command::Completions(shell) => Command::Completions(shell),
        cli::Command::Version => Command::Version,
    })
}

/// The value of `--long` read by `read` (which is given the flag as the user spells it, for
/// its errors), `None` when the flag was not given.
fn read<'a, T>(
    raw: &'a Args,
    long: &str,
    read: impl FnOnce(&str, &'a OsStr) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    raw.value(long)
        .map(|value| read(&format!("--{long}"), value))
        .transpose()
}

/// The value of `--long` read by `read`, or `default` when the flag was not given.
fn read_or<'a, T>(
    raw: &'a Args,
    long: &str,
    default: T,
    reader: impl FnOnce(&str, &'a OsStr) -> Result<T, Error>,
) -> Result<T, Error> {
    Ok(read(raw, long, reader)?.unwrap_or(default))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The units of bare numbers and the bounds of duration flags.
const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;

    use super::run::url_stream_names;
    use super::*;
    use crate::archive::naming;
    use crate::console::Format;
    use crate::run::{self, Output};

    fn parse(args: &[&str]) -> Result<Command, Error> {
        from_args(args.iter().map(OsString::from).collect())
    }

    fn run_cfg(args: &[&str]) -> run::Config {
        match parse(args) {
            Ok(Command::Run(cfg, _)) => *cfg,
            other => panic!("expected run for {args:?}, got {other:?}"),
        }
    }

    /// The help text's entry for `flag`: its line and the continuation lines below it.
    fn help_entry(help: &str, flag: &str) -> String {
        let start = [" ", "\n"]
            .iter()
            .find_map(|after| help.find(&format!("\n    {flag}{after}")))
            .unwrap_or_else(|| panic!("{flag} has no help entry"));
        let rest = &help[start + 1..];
        let end = rest[4..].find("\n    -").map_or(rest.len(), |idx| idx + 4);
        rest[..end].to_string()
    }

    #[test]
    fn defaults_are_applied_and_stated_in_the_help() {
        let cfg = run_cfg(&[]);
        assert_eq!(cfg.client.url, format!("{}{}", d::BASE_URL, d::STREAM));
        assert_eq!(cfg.client.user_agent, d::USER_AGENT);
        assert_eq!(cfg.archive.dir, PathBuf::from(d::OUTPUT_DIR));
        assert_eq!(cfg.archive.level, d::LEVEL);
        assert_eq!(cfg.archive.policy.minute, Some(d::ROTATE_MINUTE));
        assert_eq!(cfg.archive.policy.max_events, Some(d::ROTATE_EVENTS));
        assert_eq!(cfg.archive.policy.max_bytes, None);
        assert_eq!(cfg.session.idle_timeout, secs(d::IDLE_TIMEOUT_SECS));
        assert_eq!(cfg.session.max_event_bytes, d::MAX_EVENT_BYTES);
        assert_eq!(
            cfg.session.checkpoint_interval,
            Some(secs(d::CHECKPOINT_INTERVAL_SECS))
        );
        assert_eq!(cfg.session.gap_warn, secs(d::GAP_WARN_SECS));
        assert!(cfg.health.is_none());
        assert_eq!(
            cfg.archive.naming,
            naming::Naming::Ours {
                label: "recentchange".into()
            }
        );
        for off in ["off", ""] {
            assert!(run_cfg(&["--status-port", off]).health.is_none(), "{off:?}");
        }
        let with_port = run_cfg(&["--status-port", "0"]).health.expect("health");
        assert_eq!(with_port.addr.ip().to_string(), d::STATUS_ADDR);
        assert_eq!(with_port.max_silence, secs(d::MAX_SILENCE_SECS));
        let Ok(Command::Verify(verify)) = parse(&["verify", "x"]) else {
            panic!("verify")
        };
        assert_eq!(verify.gap, secs(d::VERIFY_GAP_SECS));
        assert_eq!(verify.offset_slack, d::OFFSET_SLACK);
        let Ok(Command::Serve(serve, _)) = parse(&["serve", "--input", "x"]) else {
            panic!("serve")
        };
        assert_eq!(
            (serve.addr.as_str(), serve.port),
            (d::SERVE_ADDR, d::SERVE_PORT)
        );
        assert_eq!(serve.keepalive, secs(d::KEEPALIVE_SECS));

        let help = cli::help();
        for (flag, default) in [
            ("--stream NAMES", d::STREAM.to_string()),
            ("--base-url URL", d::BASE_URL.to_string()),
            ("--output-dir DIR", format!("./{}", d::OUTPUT_DIR)),
            ("--idle-timeout SECS", d::IDLE_TIMEOUT_SECS.to_string()),
            ("--max-event-bytes N", d::MAX_EVENT_BYTES.to_string()),
            ("--level 0-9", d::LEVEL.to_string()),
            ("--rotate-minute M|off", d::ROTATE_MINUTE.to_string()),
            ("--rotate-events N|off", d::ROTATE_EVENTS.to_string()),
            (
                "--checkpoint-interval SECS|off",
                d::CHECKPOINT_INTERVAL_SECS.to_string(),
            ),
            ("--gap-warn SECS", d::GAP_WARN_SECS.to_string()),
            ("--status-addr ADDR", d::STATUS_ADDR.to_string()),
            ("--max-silence SECS", d::MAX_SILENCE_SECS.to_string()),
            (
                "--log-timestamps on|off",
                if d::LOG_TIMESTAMPS { "on" } else { "off" }.to_string(),
            ),
            ("--gap SECS", d::VERIFY_GAP_SECS.to_string()),
            ("--offset-slack N", d::OFFSET_SLACK.to_string()),
            ("--addr ADDR", d::SERVE_ADDR.to_string()),
            ("--port PORT", d::SERVE_PORT.to_string()),
            ("--keepalive SECS", d::KEEPALIVE_SECS.to_string()),
            ("--retry-after SECS", d::SERVE_RETRY_AFTER_SECS.to_string()),
        ] {
            let entry = help_entry(&help, flag);
            assert!(
                entry.contains(&format!("[default: {default}]")),
                "{flag}: {entry:?}"
            );
        }
        assert!(help.contains(&format!("the last {} events", d::DUPLICATE_WINDOW)));
    }

    #[test]
    fn sizes_and_durations_take_units_and_bare_numbers_keep_their_meaning() {
        let cfg = run_cfg(&[
            "--idle-timeout",
            "2m",
            "--max-archive-bytes",
            "10G",
            "--keep-days",
            "15d",
            "--max-event-bytes",
            "64KiB",
            "--rotate-bytes",
            "5MB",
            "--checkpoint-interval",
            "500ms",
        ]);
        assert_eq!(cfg.session.idle_timeout, secs(120));
        assert_eq!(cfg.archive.retention.max_bytes, Some(10_000_000_000));
        assert_eq!(cfg.archive.retention.keep, Some(15 * DAY));
        assert_eq!(cfg.session.max_event_bytes, 64 << 10);
        assert_eq!(cfg.archive.policy.max_bytes, Some(5_000_000));
        assert_eq!(
            cfg.session.checkpoint_interval,
            Some(Duration::from_millis(500))
        );
        let bare = run_cfg(&[
            "--idle-timeout",
            "90",
            "--keep-days",
            "7",
            "--max-archive-bytes",
            "1000",
        ]);
        assert_eq!(bare.session.idle_timeout, secs(90));
        assert_eq!(bare.archive.retention.keep, Some(7 * DAY));
        assert_eq!(bare.archive.retention.max_bytes, Some(1000));
        let Ok(Command::Serve(serve, _)) = parse(&[
            "serve",
            "--input",
            "x",
            "--retry",
            "2s",
            "--keepalive",
            "1m",
        ]) else {
            panic!("serve")
        };
        assert_eq!((serve.retry_ms, serve.keepalive), (Some(2000), secs(60)));
    }

    #[test]
    fn off_values_and_namings() {
        let cfg = run_cfg(&[
            "--rotate-minute",
            "off",
            "--rotate-events",
            "",
            "--checkpoint-interval",
            "off",
            "--rotate-bytes",
            "1000",
        ]);
        assert_eq!(cfg.archive.policy.minute, None);
        assert_eq!(cfg.archive.policy.max_events, None);
        assert_eq!(cfg.archive.policy.max_bytes, Some(1000));
        assert_eq!(cfg.session.checkpoint_interval, None);
        assert!(parse(&["--rotate-minute", "60"]).is_err());
        assert!(parse(&["--naming", "python"]).is_err());
        let cfg = run_cfg(&["--naming", "wikistreamreader"]);
        assert_eq!(cfg.archive.naming, naming::Naming::WikistreamReader);
    }

    #[test]
    fn urls_and_labels() {
        let cfg = run_cfg(&[
            "--stream",
            "recentchange,page-create",
            "--base-url",
            "https://stream.wikimedia.org/v2/stream",
        ]);
        assert_eq!(
            cfg.client.url,
            "https://stream.wikimedia.org/v2/stream/recentchange,page-create"
        );
        assert_eq!(
            cfg.archive.naming,
            naming::Naming::Ours {
                label: "recentchange+page-create".into()
            }
        );
        let label = |url: &str| naming::stream_label(&url_stream_names(url));
        assert_eq!(
            label("http://127.0.0.1:1/v2/stream/recentchange?x=1"),
            "recentchange"
        );
        assert_eq!(label("http://h/"), "h");
    }

    #[test]
    fn outputs_and_logging() {
        let Ok(Command::Run(cfg, logging)) = parse(&["tail", "-v"]) else {
            panic!("tail")
        };
        assert_eq!(cfg.output, Output::Print(Format::Line));
        assert_eq!(
            logging,
            Logging {
                verbosity: 0,
                timestamps: false
            }
        );
        let cfg = run_cfg(&["--tee", "--format", "json"]);
        assert_eq!(cfg.output, Output::ArchiveAndPrint(Format::Json));
        assert!(parse(&["--format", "json"]).is_err());
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
            (&["--since", "yesterday"], "--since"),
            (&["--status-addr", "localhost"], "--status-addr"),
            (&["--no-bots", "--bots-only"], "--bots-only"),
            (&["--invert-match"], "--match"),
            (&["cat", "--from", "2", "--to", "1"], "--from"),
            (&["serve"], "--input"),
            (&["serve", "--input", "x", "--rate", "x"], "--rate"),
            (
                &["serve", "--input", "x", "--cut-mid-event"],
                "--disconnect-every",
            ),
            (&["frobnicate"], "frobnicate"),
            (&["--ship-to", "https://bucket"], "s3://BUCKET"),
            (&["--ship-to", "s3://bucket", "--on-ready", "x"], "exclude"),
            (&["--keep-days", "0"], "--keep-days 0"),
            (&["--s3-region", "eu"], "--s3-region needs --ship-to"),
            (
                &["--on-ready", "x", "--s3-endpoint", "http://h"],
                "--s3-endpoint needs",
            ),
            (&["ship", "dir"], "--to"),
            (&["ship", "--to", "s3://bucket"], "directory"),
            (
                &["ship", "--to", "s3://bucket", "--check", "--dry-run", "d"],
                "exclude",
            ),
        ];
        for (args, needle) in cases {
            let message = parse(args).expect_err("should fail").to_string();
            assert!(message.contains(needle), "{args:?}: {message}");
            assert!(message.contains("--help"), "{args:?}: {message}");
        }
    }
}
