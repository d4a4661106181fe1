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

/// An `http://` or `https://` URL with a host and, if any, a port from 1 to 65535.
pub fn check_url(flag: &str, url: &str) -> Result<(), Error> {
    url_problem(url).map_or(Ok(()), |problem| {
        Err(Error::usage(format!(
            "invalid value for {flag}: '{url}' ({problem})"
        )))
    })
}

/// What is wrong with `url` as a stream URL, if anything. Pure, and fuzzed.
pub fn url_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Some("an http:// or https:// URL");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("a URL has no spaces or control characters");
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Some("user names in the URL are not supported");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let Some((address, after)) = bracketed.split_once(']') else {
                return Some("an IPv6 address needs its closing ']'");
            };
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Some("not an IPv6 address between '[' and ']'");
            }
            match after {
                "" => (address, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (address, Some(port)),
                    None => return Some("only ':PORT' may follow ']'"),
                },
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return Some("an http:// or https:// URL with a host name");
    }
    match port {
        None => None,
        Some(port)
            if !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && (1..=65_535).contains(&port.parse::<u32>().unwrap_or(0)) =>
        {
            None
        }
        Some(_) => Some("the port must be a number from 1 to 65535"),
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
        for good in [
            "http://127.0.0.1:8080/v2/stream/recentchange",
            "https://stream.wikimedia.org/v2/stream/a,b?x=1",
            "http://[::1]:9/x",
            "http://[::1]",
            "http://h:65535",
            "http://h#frag",
        ] {
            assert_eq!(url_problem(good), None, "{good}");
        }
        for bad in [
            "http://127.0.0.1:99999/x",
            "http://127.0.0.1:0/x",
            "http://127.0.0.1:/x",
            "http://127.0.0.1:x/x",
            "http://[::1",
            "http://[::1]x/",
            "http://[nope]/",
            "http://user@h/",
            "http://h o/",
            "http://:80/",
            "http://h\n/",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
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
