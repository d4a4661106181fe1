//! From the raw command line to the typed settings each part takes: the client's, the
//! archive's, the session's, the health endpoint's, each tool's.
//!
//! This layer owns every default (`defaults`), checks every value (`values`) and every
//! combination of flags, and is, with `main.rs`, the only importer of `cli`. It does no I/O:
//! nothing is opened or connected here.

pub mod defaults;
pub mod values;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use self::defaults as d;
use self::values::{check_url, choice, is_stream_name, non_empty_list, number, split_list, text};
use crate::archive::{self, naming, retention, rotate};
use crate::cli::{self, Error};
use crate::client;
use crate::console::Format;
use crate::filter::{Bots, Filter};
use crate::health;
use crate::run::{self, Output};
use crate::tools::{cat, parse, serve, verify};

/// What to do, with everything it needs.
#[derive(Debug)]
pub enum Command {
    Run(Box<run::Config>, Logging),
    Cat(cat::Config),
    Verify(verify::Config),
    Parse(parse::Config),
    Serve(serve::Config, Logging),
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
pub fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command, Error> {
    Ok(match cli::parse_args(args)? {
        cli::Command::Run(raw) => {
            let (cfg, logging) = run_config(*raw)?;
            Command::Run(Box::new(cfg), logging)
        }
        cli::Command::Cat(raw) => Command::Cat(cat_config(raw)?),
        cli::Command::Verify(raw) => Command::Verify(verify_config(raw)?),
        cli::Command::Parse(raw) => Command::Parse(parse::Config {
            input: raw.input,
            max_event_bytes: d::MAX_EVENT_BYTES,
        }),
        cli::Command::Serve(raw) => {
            let verbosity = raw.verbosity;
            let logging = Logging {
                verbosity,
                timestamps: true,
            };
            Command::Serve(serve_config(raw)?, logging)
        }
        cli::Command::Help(topic) => Command::Help(topic),
        cli::Command::Completions(shell) => Command::Completions(shell),
        cli::Command::Version => Command::Version,
    })
}

/// `raw` read by `read`, or `default` when the flag was not given.
fn or_default<T>(
    raw: Option<&OsStr>,
    default: T,
    read: impl FnOnce(&OsStr) -> Result<T, Error>,
) -> Result<T, Error> {
    raw.map_or(Ok(default), read)
}

/// A `--flag` value read by `read`, `None` when not given.
fn optional<T>(
    raw: Option<&OsStr>,
    read: impl FnOnce(&OsStr) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    raw.map(read).transpose()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The units of bare numbers and the bounds of duration flags.
const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn run_config(raw: cli::RunArgs) -> Result<(run::Config, Logging), Error> {
    let format = optional(raw.format.as_deref(), |v| {
        choice(
            "--format",
            v,
            &[("line", Format::Line), ("json", Format::Json)],
            "line or json",
        )
    })?;
    let output = match (raw.tail, raw.tee) {
        (true, _) => Output::Print(format.unwrap_or(Format::Line)),
        (false, true) => Output::ArchiveAndPrint(format.unwrap_or(Format::Line)),
        (false, false) if format.is_some() => {
            return Err(Error::usage("--format needs --tee (or use 'tail')"));
        }
        (false, false) => Output::Archive,
    };
    let (url, label) = source(&raw)?;
    let streams = url_stream_names(&url);
    let layout = optional(raw.layout.as_deref(), |v| {
        choice("--layout", v, &naming::Layout::NAMES, "partitioned or flat")
    })?;
    let user_agent = match &raw.user_agent {
        Some(v) => text("--user-agent", v)?.to_string(),
        None => d::USER_AGENT.to_string(),
    };
    if user_agent.trim().is_empty() || user_agent.chars().any(|c| c.is_control()) {
        return Err(Error::usage(
            "invalid value for --user-agent: must be non-empty printable text",
        ));
    }
    let naming = or_default(raw.naming.as_deref(), false, |v| {
        choice(
            "--naming",
            v,
            &[("ours", false), ("wikistreamreader", true)],
            "ours or wikistreamreader",
        )
    })?;
    let number_or_off = |flag: &str, v: Option<&OsStr>, default: Option<u64>, min, max| {
        or_default(v, default, |v| values::number_or_off(flag, v, min, max))
    };
    if naming && layout == Some(naming::Layout::Partitioned) {
        return Err(Error::usage(
            "--naming wikistreamreader needs --layout flat (its names have no partitions)",
        ));
    }
    let archive = archive::Config {
        layout,
        streams,
        dir: raw
            .output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(d::OUTPUT_DIR)),
        naming: match naming {
            true => naming::Naming::WikistreamReader,
            false => naming::Naming::Ours { label },
        },
        level: or_default(raw.level.as_deref(), d::LEVEL, |v| {
            Ok(number("--level", v, 0, 9)? as u32)
        })?,
        policy: rotate::Policy {
            minute: number_or_off(
                "--rotate-minute",
                raw.rotate_minute.as_deref(),
                Some(u64::from(d::ROTATE_MINUTE)),
                0,
                59,
            )?
            .map(|m| m as u8),
            max_events: number_or_off(
                "--rotate-events",
                raw.rotate_events.as_deref(),
                Some(d::ROTATE_EVENTS),
                1,
                u64::MAX,
            )?,
            max_bytes: optional(raw.rotate_bytes.as_deref(), |v| {
                values::size_or_off("--rotate-bytes", v, 1, u64::MAX)
            })?
            .flatten(),
        },
        on_ready: raw.on_ready.clone(),
        retention: retention::Policy {
            keep: optional(raw.keep_days.as_deref(), |v| {
                values::duration("--keep-days", v, DAY, HOUR, 36_500 * DAY)
            })?,
            max_bytes: optional(raw.max_archive_bytes.as_deref(), |v| {
                values::size("--max-archive-bytes", v, 1, u64::MAX)
            })?,
        },
    };
    let session = run::SessionConfig {
        since_ms: optional(raw.since.as_deref(), |v| values::time_ms("--since", v))?,
        idle_timeout: or_default(
            raw.idle_timeout.as_deref(),
            secs(d::IDLE_TIMEOUT_SECS),
            |v| values::duration("--idle-timeout", v, SECOND, SECOND, DAY),
        )?,
        max_events: optional(raw.max_events.as_deref(), |v| {
            number("--max-events", v, 1, u64::MAX)
        })?,
        max_event_bytes: or_default(raw.max_event_bytes.as_deref(), d::MAX_EVENT_BYTES, |v| {
            Ok(values::size("--max-event-bytes", v, 1024, 1 << 30)? as usize)
        })?,
        keep_canary: raw.keep_canary,
        checkpoint_interval: or_default(
            raw.checkpoint_interval.as_deref(),
            Some(secs(d::CHECKPOINT_INTERVAL_SECS)),
            |v| {
                let min = Duration::from_millis(50);
                values::duration_or_off("--checkpoint-interval", v, SECOND, min, DAY)
            },
        )?,
        gap_warn: or_default(raw.gap_warn.as_deref(), secs(d::GAP_WARN_SECS), |v| {
            values::duration("--gap-warn", v, SECOND, SECOND, YEAR)
        })?,
        filter: filter(&raw.filter)?,
    };
    let health = health_config(&raw)?;
    let log_timestamps = or_default(raw.log_timestamps.as_deref(), d::LOG_TIMESTAMPS, |v| {
        choice(
            "--log-timestamps",
            v,
            &[("on", true), ("off", false)],
            "on or off",
        )
    })?;
    let logging = Logging {
        // `tail` shares the terminal with its events: connection news only with -v.
        verbosity: raw.verbosity - i32::from(raw.tail),
        // `tail` prints events on stdout; its log lines (stderr) stay short.
        timestamps: log_timestamps && output.print_format().is_none(),
    };
    let cfg = run::Config {
        client: client::Config {
            url,
            user_agent,
            ca_file: raw.ca_file,
        },
        archive,
        session,
        health,
        output,
    };
    Ok((cfg, logging))
}

/// The stream URL, and the label its file names carry.
fn source(raw: &cli::RunArgs) -> Result<(String, String), Error> {
    if let Some(url) = &raw.url {
        if raw.stream.is_some() {
            return Err(Error::usage("--url and --stream cannot be used together"));
        }
        if raw.base_url.is_some() {
            return Err(Error::usage("--url and --base-url cannot be used together"));
        }
        let url = text("--url", url)?.to_string();
        check_url("--url", &url)?;
        let label = naming::stream_label(&url_stream_names(&url));
        return Ok((url, label));
    }
    let names = match &raw.stream {
        Some(v) => split_list(text("--stream", v)?),
        None => vec![d::STREAM.to_string()],
    };
    if names.is_empty() {
        return Err(Error::usage("--stream needs at least one stream name"));
    }
    if let Some(bad) = names.iter().find(|n| !is_stream_name(n)) {
        return Err(Error::usage(format!(
            "invalid value for --stream: '{bad}' (letters, digits, '-', '_' and '.' only)"
        )));
    }
    let base_url = match &raw.base_url {
        Some(v) => text("--base-url", v)?,
        None => d::BASE_URL,
    };
    check_url("--base-url", base_url)?;
    let slash = if base_url.ends_with('/') { "" } else { "/" };
    let url = format!("{base_url}{slash}{}", names.join(","));
    Ok((url, naming::stream_label(&names)))
}

/// The stream names in the last path segment of a `--url`.
fn url_stream_names(url: &str) -> Vec<String> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    last.split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn health_config(raw: &cli::RunArgs) -> Result<Option<health::Config>, Error> {
    let addr = match &raw.status_addr {
        Some(v) => {
            let text = text("--status-addr", v)?;
            text.parse::<std::net::IpAddr>().map_err(|_| {
                Error::usage(format!(
                    "invalid value for --status-addr: '{text}' (an IP address)"
                ))
            })?
        }
        None => d::STATUS_ADDR
            .parse()
            .expect("the default status address is an IP address"),
    };
    let max_silence = or_default(raw.max_silence.as_deref(), secs(d::MAX_SILENCE_SECS), |v| {
        values::duration("--max-silence", v, SECOND, SECOND, YEAR)
    })?;
    // `off` and an empty value (the packaged conffile's `STATUS_PORT=`) turn health off.
    let port = match raw.status_port.as_deref() {
        Some(v) if v.is_empty() || v == "off" => None,
        other => optional(other, |v| {
            values::number_or_off("--status-port", v, 0, 65_535).map(|p| p.map(|p| p as u16))
        })?
        .flatten(),
    };
    Ok(port.map(|port| health::Config {
        addr: (addr, port).into(),
        max_silence,
    }))
}

/// The filters; `--from`/`--to` reach here only from `cat`.
fn filter(raw: &cli::FilterArgs) -> Result<Filter, Error> {
    let list = |flag: &str, v: &Option<std::ffi::OsString>| {
        optional(v.as_deref(), |v| non_empty_list(flag, v)).map(Option::unwrap_or_default)
    };
    let namespaces = list("--namespace", &raw.namespace)?
        .iter()
        .map(|n| {
            n.parse::<i64>().map_err(|_| {
                Error::usage(format!(
                    "invalid value for --namespace: '{n}' (comma-separated numbers)"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let pattern = optional(raw.pattern.as_deref(), |v| {
        let text = text("--match", v)?;
        if text.is_empty() {
            return Err(Error::usage(
                "invalid value for --match: the pattern is empty",
            ));
        }
        regex_lite::Regex::new(text)
            .map_err(|e| Error::usage(format!("invalid value for --match: '{text}': {e}")))
    })?;
    let bots = match (raw.no_bots, raw.bots_only) {
        (true, true) => {
            return Err(Error::usage(
                "--no-bots and --bots-only cannot be used together",
            ));
        }
        (true, false) => Some(Bots::Exclude),
        (false, true) => Some(Bots::Only),
        (false, false) => None,
    };
    if raw.invert_match && pattern.is_none() {
        return Err(Error::usage("--invert-match needs --match REGEX"));
    }
    let from_ms = optional(raw.from.as_deref(), |v| values::time_ms("--from", v))?;
    let to_ms = optional(raw.to.as_deref(), |v| values::time_ms("--to", v))?;
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && from >= to
    {
        return Err(Error::usage("--from must be earlier than --to"));
    }
    Ok(Filter {
        wikis: list("--wiki", &raw.wiki)?,
        types: list("--type", &raw.types)?,
        domains: list("--domain", &raw.domain)?,
        bots,
        namespaces,
        pattern,
        invert_match: raw.invert_match,
        from_ms,
        to_ms,
    })
}

fn cat_config(raw: cli::CatArgs) -> Result<cat::Config, Error> {
    let mut paths = raw.paths;
    if paths.is_empty() {
        paths.push(PathBuf::from(d::CAT_PATH));
    }
    Ok(cat::Config {
        paths,
        filter: filter(&raw.filter)?,
        count: raw.count,
    })
}

fn verify_config(raw: cli::VerifyArgs) -> Result<verify::Config, Error> {
    Ok(verify::Config {
        gap: or_default(raw.gap.as_deref(), secs(d::VERIFY_GAP_SECS), |v| {
            values::duration("--gap", v, SECOND, SECOND, YEAR)
        })?,
        offset_slack: or_default(raw.offset_slack.as_deref(), d::OFFSET_SLACK, |v| {
            number("--offset-slack", v, 0, u64::MAX)
        })?,
        json: raw.json,
        dir: raw
            .dir
            .ok_or_else(|| Error::usage("verify needs an archive directory"))?,
    })
}

fn serve_config(raw: cli::ServeArgs) -> Result<serve::Config, Error> {
    let rate = optional(raw.rate.as_deref(), |v| {
        let text = text("--rate", v)?;
        match text.parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
            _ => Err(Error::usage(format!(
                "invalid value for --rate: '{text}' (a positive number)"
            ))),
        }
    })?;
    let cfg = serve::Config {
        addr: match &raw.addr {
            Some(v) => text("--addr", v)?.to_string(),
            None => d::SERVE_ADDR.to_string(),
        },
        port: or_default(raw.port.as_deref(), d::SERVE_PORT, |v| {
            Ok(number("--port", v, 0, 65_535)? as u16)
        })?,
        retry_ms: optional(raw.retry.as_deref(), |v| {
            let ms = Duration::from_millis(1);
            Ok(values::duration("--retry", v, ms, Duration::ZERO, HOUR)?.as_millis() as u64)
        })?,
        rate,
        disconnect_every: optional(raw.disconnect_every.as_deref(), |v| {
            number("--disconnect-every", v, 1, u64::MAX)
        })?,
        cut_mid_event: raw.cut_mid_event,
        stall_after: optional(raw.stall_after.as_deref(), |v| {
            number("--stall-after", v, 0, u64::MAX)
        })?,
        status_first: optional(raw.status_first.as_deref(), |v| {
            Ok(number("--status-first", v, 100, 599)? as u16)
        })?,
        status_later: optional(raw.status_later.as_deref(), |v| {
            Ok(number("--status-later", v, 100, 599)? as u16)
        })?,
        retry_after_secs: or_default(raw.retry_after.as_deref(), d::SERVE_RETRY_AFTER_SECS, |v| {
            Ok(values::duration("--retry-after", v, SECOND, Duration::ZERO, DAY)?.as_secs())
        })?,
        keepalive: or_default(raw.keepalive.as_deref(), secs(d::KEEPALIVE_SECS), |v| {
            values::duration("--keepalive", v, SECOND, SECOND, HOUR)
        })?,
        id_offsets: raw.id_offsets,
        max_connections_per_ip: optional(raw.max_connections_per_ip.as_deref(), |v| {
            Ok(number("--max-connections-per-ip", v, 1, 100_000)? as usize)
        })?,
        chaos_seed: optional(raw.chaos.as_deref(), |v| number("--chaos", v, 0, u64::MAX))?,
        inputs: raw.inputs,
    };
    if cfg.inputs.is_empty() {
        return Err(Error::usage("serve needs --input PATH"));
    }
    if cfg.cut_mid_event && cfg.disconnect_every.is_none() {
        return Err(Error::usage("--cut-mid-event needs --disconnect-every N"));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<Command, Error> {
        from_args(args.iter().map(OsString::from))
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
        ];
        for (args, needle) in cases {
            let message = parse(args).expect_err("should fail").to_string();
            assert!(message.contains(needle), "{args:?}: {message}");
            assert!(message.contains("--help"), "{args:?}: {message}");
        }
    }
}
