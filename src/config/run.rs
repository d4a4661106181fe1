//! The settings of `run` and `tail`: the client's, the archive's, the session's, the health
//! endpoint's, and how the process logs.

use std::path::PathBuf;
use std::time::Duration;

use super::values::{self, check_url, choice, number, text};
use super::{DAY, Logging, SECOND, YEAR, read, read_or, secs};
use crate::archive::{self, naming, partition, retention, rotate};
use crate::cli::{Args, Error, Topic};
use crate::client;
use crate::console::Format;
use crate::defaults as d;
use crate::filter::{Bots, Filter};
use crate::health;
use crate::run::{self, Output};

/// `run`'s or `tail`'s settings (`raw.topic` says which) and logging.
pub(super) fn config(raw: &Args) -> Result<(run::Config, Logging), Error> {
    let tail = raw.topic == Topic::Tail;
    let format = read(raw, "format", |flag, v| {
        choice(
            flag,
            v,
            &[("line", Format::Line), ("json", Format::Json)],
            "line or json",
        )
    })?;
    let output = match (tail, raw.is_set("tee")) {
        (true, _) => Output::Print(format.unwrap_or(Format::Line)),
        (false, true) => Output::ArchiveAndPrint(format.unwrap_or(Format::Line)),
        (false, false) if format.is_some() => {
            return Err(Error::usage("--format needs --tee (or use 'tail')"));
        }
        (false, false) => Output::Archive,
    };
    let (url, label) = source(raw)?;
    let user_agent = read_or(raw, "user-agent", d::USER_AGENT, text)?.to_string();
    if user_agent.trim().is_empty() || user_agent.chars().any(|c| c.is_control()) {
        return Err(Error::usage(
            "invalid value for --user-agent: must be non-empty printable text",
        ));
    }
    let log_timestamps = read_or(raw, "log-timestamps", d::LOG_TIMESTAMPS, |flag, v| {
        choice(flag, v, &[("on", true), ("off", false)], "on or off")
    })?;
    let logging = Logging {
        // `tail` shares the terminal with its events: connection news only with -v.
        verbosity: raw.verbosity() - i32::from(tail),
        // `tail` prints events on stdout; its log lines (stderr) stay short.
        timestamps: log_timestamps && output.print_format().is_none(),
    };
    let cfg = run::Config {
        client: client::Config {
            user_agent,
            ca_file: raw.value("ca-file").map(PathBuf::from),
            url: url.clone(),
        },
        archive: archive_config(raw, &url, label)?,
        ship: super::ship::run_shipping(raw)?,
        session: session_config(raw)?,
        health: health_config(raw)?,
        output,
    };
    let keeps_nothing = cfg.archive.retention.keep == Some(Duration::ZERO);
    if keeps_nothing && cfg.ship.is_none() {
        return Err(Error::usage(
            "--keep-days 0 deletes each file once shipped: it needs --ship-to or --on-ready",
        ));
    }
    Ok((cfg, logging))
}

fn archive_config(raw: &Args, url: &str, label: String) -> Result<archive::Config, Error> {
    let layout = read(raw, "layout", |flag, v| {
        choice(flag, v, &naming::Layout::NAMES, "partitioned or flat")
    })?;
    let wikistreamreader = read_or(raw, "naming", false, |flag, v| {
        let names = [("ours", false), ("wikistreamreader", true)];
        choice(flag, v, &names, "ours or wikistreamreader")
    })?;
    if wikistreamreader && layout == Some(naming::Layout::Partitioned) {
        return Err(Error::usage(
            "--naming wikistreamreader needs --layout flat (its names have no partitions)",
        ));
    }
    let number_or_off = |long, default: Option<u64>, min, max| {
        read_or(raw, long, default, |flag, v| {
            values::number_or_off(flag, v, min, max)
        })
    };
    let minute = number_or_off("rotate-minute", Some(u64::from(d::ROTATE_MINUTE)), 0, 59)?;
    let policy = rotate::Policy {
        minute: minute.map(|m| m as u8),
        max_events: number_or_off("rotate-events", Some(d::ROTATE_EVENTS), 1, u64::MAX)?,
        max_bytes: read(raw, "rotate-bytes", |flag, v| {
            values::size_or_off(flag, v, 1, u64::MAX)
        })?
        .flatten(),
    };
    let retention = retention::Policy {
        keep: read(raw, "keep-days", |flag, v| {
            values::duration(flag, v, DAY, Duration::ZERO, 36_500 * DAY)
        })?,
        max_bytes: read(raw, "max-archive-bytes", |flag, v| {
            values::size(flag, v, 1, u64::MAX)
        })?,
    };
    Ok(archive::Config {
        layout,
        streams: url_stream_names(url),
        dir: raw
            .value("output-dir")
            .map_or_else(|| PathBuf::from(d::OUTPUT_DIR), PathBuf::from),
        naming: match wikistreamreader {
            true => naming::Naming::WikistreamReader,
            false => naming::Naming::Ours { label },
        },
        level: read_or(raw, "level", d::LEVEL, |flag, v| {
            Ok(number(flag, v, 0, 9)? as u32)
        })?,
        policy,
        retention,
        max_streams: read_or(raw, "max-streams", d::MAX_STREAMS, |flag, v| {
            number(flag, v, 0, 100_000)
        })? as usize,
        max_open_files: read_or(raw, "max-open-files", d::MAX_OPEN_FILES, |flag, v| {
            number(flag, v, 1, archive::MAX_OPEN_FILES_LIMIT as u64)
        })? as usize,
    })
}

fn session_config(raw: &Args) -> Result<run::SessionConfig, Error> {
    Ok(run::SessionConfig {
        since_ms: read(raw, "since", values::time_ms)?,
        idle_timeout: read_or(
            raw,
            "idle-timeout",
            secs(d::IDLE_TIMEOUT_SECS),
            |flag, v| values::duration(flag, v, SECOND, SECOND, DAY),
        )?,
        max_events: read(raw, "max-events", |flag, v| number(flag, v, 1, u64::MAX))?,
        max_event_bytes: read_or(raw, "max-event-bytes", d::MAX_EVENT_BYTES, |flag, v| {
            Ok(values::size(flag, v, 1024, 1 << 30)? as usize)
        })?,
        keep_canary: raw.is_set("keep-canary"),
        checkpoint_interval: read_or(
            raw,
            "checkpoint-interval",
            Some(secs(d::CHECKPOINT_INTERVAL_SECS)),
            |flag, v| {
                let min = Duration::from_millis(50);
                values::duration_or_off(flag, v, SECOND, min, DAY)
            },
        )?,
        gap_warn: read_or(raw, "gap-warn", secs(d::GAP_WARN_SECS), |flag, v| {
            values::duration(flag, v, SECOND, SECOND, YEAR)
        })?,
        filter: filter(raw)?,
    })
}

/// The stream URL, and the label its file names carry.
fn source(raw: &Args) -> Result<(String, String), Error> {
    if let Some(url) = read(raw, "url", |flag, v| Ok(text(flag, v)?.to_string()))? {
        for other in ["stream", "base-url"] {
            if raw.value(other).is_some() {
                return Err(Error::usage(format!(
                    "--url and --{other} cannot be used together"
                )));
            }
        }
        check_url("--url", &url)?;
        let label = naming::stream_label(&url_stream_names(&url));
        return Ok((url, label));
    }
    let names = read(raw, "stream", |flag, v| {
        Ok(values::split_list(text(flag, v)?))
    })?
    .unwrap_or_else(|| vec![d::STREAM.to_string()]);
    if names.is_empty() {
        return Err(Error::usage("--stream needs at least one stream name"));
    }
    if let Some(bad) = names.iter().find(|n| !partition::is_safe_stream_name(n)) {
        return Err(Error::usage(format!(
            "invalid value for --stream: '{bad}' (1 to {} of a-z, 0-9, '.', '-' and '_', \
             starting with a letter or digit)",
            partition::MAX_STREAM_NAME_BYTES
        )));
    }
    let base_url = read_or(raw, "base-url", d::BASE_URL, text)?;
    check_url("--base-url", base_url)?;
    let slash = if base_url.ends_with('/') { "" } else { "/" };
    let url = format!("{base_url}{slash}{}", names.join(","));
    Ok((url, naming::stream_label(&names)))
}

/// The stream names in the last path segment of a `--url`.
pub(super) fn url_stream_names(url: &str) -> Vec<String> {
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

fn health_config(raw: &Args) -> Result<Option<health::Config>, Error> {
    let addr = read_or(raw, "status-addr", d::STATUS_ADDR, text)?;
    let addr = addr.parse::<std::net::IpAddr>().map_err(|_| {
        Error::usage(format!(
            "invalid value for --status-addr: '{addr}' (an IP address)"
        ))
    })?;
    let max_silence = read_or(raw, "max-silence", secs(d::MAX_SILENCE_SECS), |flag, v| {
        values::duration(flag, v, SECOND, SECOND, YEAR)
    })?;
    // `off` and an empty value (the packaged conffile's `STATUS_PORT=`) turn health off.
    let port = read(raw, "status-port", |flag, v| {
        values::number_or_off(flag, v, 0, 65_535)
    })?
    .flatten();
    Ok(port.map(|port| health::Config {
        addr: (addr, port as u16).into(),
        max_silence,
    }))
}

/// The filters of `run`, `tail` and `cat` (only `cat` takes `--from` and `--to`).
pub(super) fn filter(raw: &Args) -> Result<Filter, Error> {
    let mut filter = Filter::default();
    for name in crate::filter::VALUE_FILTERS {
        if let Some(value) = read(raw, name, text)? {
            filter
                .set(name, value)
                .map_err(|e| Error::usage(format!("invalid value for --{name}: {e}")))?;
        }
    }
    let bots = match (raw.is_set("no-bots"), raw.is_set("bots-only")) {
        (true, true) => {
            return Err(Error::usage(
                "--no-bots and --bots-only cannot be used together",
            ));
        }
        (true, false) => Some(Bots::Exclude),
        (false, true) => Some(Bots::Only),
        (false, false) => None,
    };
    let invert_match = raw.is_set("invert-match");
    if invert_match && filter.pattern.is_none() {
        return Err(Error::usage("--invert-match needs --match REGEX"));
    }
    let from_ms = read(raw, "from", values::time_ms)?;
    let to_ms = read(raw, "to", values::time_ms)?;
    if let (Some(from), Some(to)) = (from_ms, to_ms)
        && from >= to
    {
        return Err(Error::usage("--from must be earlier than --to"));
    }
    Ok(Filter {
        bots,
        invert_match,
        from_ms,
        to_ms,
        ..filter
    })
}
