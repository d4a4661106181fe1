//! The settings of shipping: `run --ship-to` / `--on-ready`, and the `ship` tool.

use std::path::PathBuf;

use super::values::{self, text};
use super::{DAY, SECOND, read, read_or, secs};
use crate::cli::{Args, Error};
use crate::defaults as d;
use crate::ship::{self, credentials, s3};
use crate::tools::ship as tool;

/// `run`'s shipping, if any: `--ship-to` or `--on-ready`, not both.
pub(super) fn run_shipping(raw: &Args) -> Result<Option<ship::Config>, Error> {
    let to = match (raw.value("ship-to"), raw.value("on-ready")) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "--ship-to and --on-ready exclude each other: ship with one (an --on-ready CMD may \
                 upload and notify both)",
            ));
        }
        (Some(url), None) => bucket(raw, text("--ship-to", url)?)?,
        (None, Some(program)) => ship::To::Command {
            program: program.to_owned(),
            timeout: read_or(
                raw,
                "on-ready-timeout",
                secs(d::ON_READY_TIMEOUT_SECS),
                |flag, v| values::duration(flag, v, SECOND, SECOND, DAY),
            )?,
        },
        (None, None) => {
            let s3_only = [
                "s3-endpoint",
                "s3-region",
                "s3-credentials",
                "max-ship-lag",
                "on-ready-timeout",
            ];
            if let Some(flag) = s3_only.iter().find(|f| raw.is_set(f)) {
                return Err(Error::usage(format!(
                    "--{flag} needs --ship-to (or --on-ready)"
                )));
            }
            return Ok(None);
        }
    };
    if matches!(to, ship::To::Command { .. }) && raw.is_set("s3-endpoint") {
        return Err(Error::usage("--s3-endpoint needs --ship-to"));
    }
    Ok(Some(ship::Config {
        to,
        max_lag: read_or(
            raw,
            "max-ship-lag",
            secs(d::MAX_SHIP_LAG_SECS),
            |flag, v| values::duration(flag, v, SECOND, SECOND, 365 * DAY),
        )?,
    }))
}

/// An S3 destination from `url` and the S3 flags, with the environment's defaults.
fn bucket(raw: &Args, url: &str) -> Result<ship::To, Error> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let endpoint = match read(raw, "s3-endpoint", text)? {
        Some(flag) => Some(flag.to_string()),
        None => env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")),
    };
    let region = match read(raw, "s3-region", text)? {
        Some(flag) => flag.to_string(),
        None => env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| d::S3_REGION.to_string()),
    };
    let target = s3::Target::parse(url, endpoint.as_deref(), &region)
        .map_err(|e| Error::usage(format!("invalid S3 destination: {e}")))?;
    Ok(ship::To::S3 {
        target,
        credentials: credentials::Source {
            file: raw.value("s3-credentials").map(PathBuf::from),
        },
    })
}

/// `ship DIR --to s3://…`.
pub(super) fn tool_config(raw: Args) -> Result<tool::Config, Error> {
    let url = read(&raw, "to", text)?
        .ok_or_else(|| Error::usage("ship needs --to s3://BUCKET/PREFIX"))?;
    let to = bucket(&raw, url)?;
    let mode = match (raw.is_set("dry-run"), raw.is_set("check")) {
        (true, true) => return Err(Error::usage("--dry-run and --check exclude each other")),
        (true, false) => tool::Mode::DryRun,
        (false, true) => tool::Mode::Check,
        (false, false) => tool::Mode::Upload,
    };
    Ok(tool::Config {
        to,
        mode,
        dir: raw
            .positionals
            .first()
            .map(PathBuf::from)
            .ok_or_else(|| Error::usage("ship needs an archive directory"))?,
    })
}
