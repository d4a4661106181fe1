//! Reading one raw flag value: text, whole numbers in a range, seconds, `off`, lists, times,
//! URLs. Every error names its flag and says what would have been accepted.
//!
//! Pure: values in, values or a usage error out.

use std::ffi::OsStr;
use std::time::Duration;

use crate::cli::Error;
use crate::times::{self, TimeError};

/// The value as UTF-8 text.
pub fn text<'v>(flag: &str, raw: &'v OsStr) -> Result<&'v str, Error> {
    raw.to_str().ok_or_else(|| {
        Error::usage(format!(
            "invalid value for {flag}: '{}' is not valid UTF-8",
            raw.to_string_lossy()
        ))
    })
}

/// A whole number in `min..=max`.
pub fn number(flag: &str, raw: &OsStr, min: u64, max: u64) -> Result<u64, Error> {
    let text = text(flag, raw)?;
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == u64::MAX => Err(Error::usage(format!(
            "invalid value for {flag}: '{text}' (a whole number >= {min})"
        ))),
        _ => Err(Error::usage(format!(
            "invalid value for {flag}: '{text}' (a whole number from {min} to {max})"
        ))),
    }
}

/// A whole number in `min..=max`, or `off` (`None`).
pub fn number_or_off(flag: &str, raw: &OsStr, min: u64, max: u64) -> Result<Option<u64>, Error> {
    let text = text(flag, raw)?;
    if text == "off" {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(Error::usage(format!(
            "invalid value for {flag}: '{text}' (a whole number from {min} to {max}, or off)"
        ))),
    }
}

/// Seconds (fractions allowed, from 0.05 to a day), or `off` (`None`).
pub fn seconds_or_off(flag: &str, raw: &OsStr) -> Result<Option<Duration>, Error> {
    let text = text(flag, raw)?;
    if text == "off" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(secs) if (0.05..=86_400.0).contains(&secs) => Ok(Some(Duration::from_secs_f64(secs))),
        _ => Err(Error::usage(format!(
            "invalid value for {flag}: '{text}' (seconds from 0.05 to 86400, or off)"
        ))),
    }
}

/// One of `choices` (text, value), described as `expected` in the error.
pub fn choice<T: Copy>(
    flag: &str,
    raw: &OsStr,
    choices: &[(&str, T)],
    expected: &str,
) -> Result<T, Error> {
    let text = text(flag, raw)?;
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| Error::usage(format!("invalid value for {flag}: '{text}' ({expected})")))
}

/// A time: milliseconds since the epoch, or an RFC 3339 date-time.
pub fn time_ms(flag: &str, raw: &OsStr) -> Result<i64, Error> {
    let text = text(flag, raw)?;
    times::parse_ms_or_rfc3339(text).map_err(|e| match e {
        TimeError::TooLarge => {
            Error::usage(format!("invalid value for {flag}: '{text}' is too large"))
        }
        TimeError::Malformed => Error::usage(format!(
            "invalid value for {flag}: '{text}' (milliseconds since the epoch, or RFC 3339 like 2025-01-31T12:00:00Z)"
        )),
    })
}

/// Comma-separated values, blanks dropped.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Comma-separated values, at least one.
pub fn non_empty_list(flag: &str, raw: &OsStr) -> Result<Vec<String>, Error> {
    let values = split_list(text(flag, raw)?);
    if values.is_empty() {
        return Err(Error::usage(format!("{flag} needs at least one value")));
    }
    Ok(values)
}

/// Letters, digits, `-`, `_` and `.`: what EventStreams stream names are made of.
pub fn is_stream_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An `http://` or `https://` URL with a host.
pub fn check_url(flag: &str, url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(Error::usage(format!(
            "invalid value for {flag}: '{url}' (an http:// or https:// URL)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> &OsStr {
        OsStr::new(text)
    }

    #[test]
    fn numbers_and_off() {
        assert_eq!(number("--n", os("5"), 1, 9).unwrap(), 5);
        let message = number("--n", os("10"), 1, 9).unwrap_err().to_string();
        assert!(
            message.contains("--n") && message.contains("from 1 to 9"),
            "{message}"
        );
        assert!(
            number("--n", os("x"), 1, u64::MAX)
                .unwrap_err()
                .to_string()
                .contains(">= 1")
        );
        assert_eq!(number_or_off("--n", os("off"), 1, 9).unwrap(), None);
        assert_eq!(
            seconds_or_off("--s", os("0.5")).unwrap(),
            Some(Duration::from_millis(500))
        );
        assert!(seconds_or_off("--s", os("0.01")).is_err());
    }

    #[test]
    fn times_lists_urls_and_choices() {
        assert_eq!(
            time_ms("--since", os("2024-11-23T09:00:00Z")).unwrap(),
            1_732_352_400_000
        );
        assert!(
            time_ms("--since", os("yesterday"))
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
        assert_eq!(split_list(" a,,b ,"), ["a", "b"]);
        assert!(non_empty_list("--wiki", os(",")).is_err());
        assert!(check_url("--url", "ftp://x").is_err());
        assert!(check_url("--url", "http:///x").is_err());
        assert!(check_url("--url", "https://h/x").is_ok());
        assert!(
            choice(
                "--o",
                os("on"),
                &[("on", true), ("off", false)],
                "on or off"
            )
            .unwrap()
        );
        assert!(choice("--o", os("maybe"), &[("on", true)], "on").is_err());
    }
}
