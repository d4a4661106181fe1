//! The settings of the tools: `cat`, `verify` and `serve` (`parse` has none of its own).

use std::path::PathBuf;
use std::time::Duration;

use super::run::filter;
use super::values::{self, number, text};
use super::{DAY, HOUR, SECOND, YEAR, read, read_or, secs};
use crate::cli::{Args, Error};
use crate::defaults as d;
use crate::tools::{cat, schema, serve, verify};

pub(super) fn cat_config(raw: Args) -> Result<cat::Config, Error> {
    let mut paths: Vec<PathBuf> = raw.positionals.iter().map(PathBuf::from).collect();
    if paths.is_empty() {
        paths.push(PathBuf::from(d::CAT_PATH));
    }
    Ok(cat::Config {
        paths,
        filter: filter(&raw)?,
        count: raw.is_set("count"),
    })
}

pub(super) fn verify_config(raw: Args) -> Result<verify::Config, Error> {
    Ok(verify::Config {
        gap: read_or(&raw, "gap", secs(d::VERIFY_GAP_SECS), |flag, v| {
            values::duration(flag, v, SECOND, SECOND, YEAR)
        })?,
        offset_slack: read_or(&raw, "offset-slack", d::OFFSET_SLACK, |flag, v| {
            number(flag, v, 0, u64::MAX)
        })?,
        json: raw.is_set("json"),
        dir: raw
            .positionals
            .first()
            .map(PathBuf::from)
            .ok_or_else(|| Error::usage("verify needs an archive directory"))?,
    })
}

pub(super) fn schema_config(raw: Args) -> Result<schema::Config, Error> {
    Ok(schema::Config {
        engine: read(&raw, "engine", |flag, v| {
            values::choice(flag, v, &schema::Engine::NAMES, "duckdb, spark or athena")
        })?,
        location: read(&raw, "location", text)?.map(str::to_string),
        dir: raw
            .positionals
            .first()
            .map(PathBuf::from)
            .ok_or_else(|| Error::usage("schema needs an archive directory"))?,
    })
}

pub(super) fn serve_config(raw: Args) -> Result<serve::Config, Error> {
    let rate = read(&raw, "rate", |flag, v| {
        let text = text(flag, v)?;
        match text.parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
            _ => Err(Error::usage(format!(
                "invalid value for {flag}: '{text}' (a positive number)"
            ))),
        }
    })?;
    let status = |long| read(&raw, long, |flag, v| Ok(number(flag, v, 100, 599)? as u16));
    let cfg = serve::Config {
        addr: read_or(&raw, "addr", d::SERVE_ADDR, text)?.to_string(),
        port: read_or(&raw, "port", d::SERVE_PORT, |flag, v| {
            Ok(number(flag, v, 0, 65_535)? as u16)
        })?,
        retry_ms: read(&raw, "retry", |flag, v| {
            let ms = Duration::from_millis(1);
            Ok(values::duration(flag, v, ms, Duration::ZERO, HOUR)?.as_millis() as u64)
        })?,
        rate,
        disconnect_every: read(&raw, "disconnect-every", |flag, v| {
            number(flag, v, 1, u64::MAX)
        })?,
        cut_mid_event: raw.is_set("cut-mid-event"),
        stall_after: read(&raw, "stall-after", |flag, v| number(flag, v, 0, u64::MAX))?,
        status_first: status("status-first")?,
        status_later: status("status-later")?,
        retry_after_secs: read_or(&raw, "retry-after", d::SERVE_RETRY_AFTER_SECS, |flag, v| {
            Ok(values::duration(flag, v, SECOND, Duration::ZERO, DAY)?.as_secs())
        })?,
        keepalive: read_or(&raw, "keepalive", secs(d::KEEPALIVE_SECS), |flag, v| {
            values::duration(flag, v, SECOND, SECOND, HOUR)
        })?,
        // Timestamps are the default, as on EventStreams; the last of the two flags wins.
        id_marks: match raw.last_of(&["id-offsets", "id-timestamps"]) {
            Some("id-offsets") => serve::IdMarks::Offsets,
            _ => serve::IdMarks::Timestamps,
        },
        max_connections_per_ip: read_or(
            &raw,
            "max-connections-per-ip",
            d::SERVE_MAX_CONNECTIONS_PER_IP,
            |flag, v| number(flag, v, 1, 100_000),
        )? as usize,
        chaos_seed: read(&raw, "chaos", |flag, v| number(flag, v, 0, u64::MAX))?,
        inputs: raw.values("input").map(PathBuf::from).collect(),
    };
    if cfg.inputs.is_empty() {
        return Err(Error::usage("serve needs --input PATH"));
    }
    if cfg.cut_mid_event && cfg.disconnect_every.is_none() {
        return Err(Error::usage("--cut-mid-event needs --disconnect-every N"));
    }
    Ok(cfg)
}
