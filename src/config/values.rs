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

/// A whole number in `min..=max`, or `off` or an empty value (`None`).
pub fn number_or_off(flag: &str, raw: &OsStr, min: u64, max: u64) -> Result<Option<u64>, Error> {
    let text = text(flag, raw)?;
    if text == "off" || text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(Error::usage(format!(
            "invalid value for {flag}: '{text}' (a whole number from {min} to {max}, or off)"
        ))),
    }
}

/// A size in bytes: a whole number, or one followed by `K`, `M`, `G`, `T` (or `KB` … `TB`:
/// powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), in any case. At least `min`.
pub fn size(flag: &str, raw: &OsStr, min: u64, max: u64) -> Result<u64, Error> {
    let text = text(flag, raw)?;
    parse_size(text)
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            Error::usage(format!(
                "invalid value for {flag}: '{text}' (bytes from {min} to {max}, or a size like \
                 500K, 64MiB, 10G)"
            ))
        })
}

/// `size`, or `off` or an empty value (`None`).
pub fn size_or_off(flag: &str, raw: &OsStr, min: u64, max: u64) -> Result<Option<u64>, Error> {
    match text(flag, raw)? {
        "off" | "" => Ok(None),
        _ => size(flag, raw, min, max).map(Some),
    }
}

/// Bytes for a size text, if it is one.
pub fn parse_size(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let number: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// A duration: a number of `bare` (the flag's unit when none is written), or a number followed
/// by `s`, `m`, `h` or `d` (`w` for weeks); fractions allowed. From `min` to `max`.
pub fn duration(
    flag: &str,
    raw: &OsStr,
    bare: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, Error> {
    let text = text(flag, raw)?;
    parse_duration(text, bare)
        .filter(|d| (min..=max).contains(d))
        .ok_or_else(|| {
            Error::usage(format!(
                "invalid value for {flag}: '{text}' (a number of {}, or a duration like 90s, \
                 2m, 1h, 7d; from {} to {})",
                unit_name(bare),
                human(min),
                human(max)
            ))
        })
}

/// `duration`, or `off` or an empty value (`None`).
pub fn duration_or_off(
    flag: &str,
    raw: &OsStr,
    bare: Duration,
    min: Duration,
    max: Duration,
) -> Result<Option<Duration>, Error> {
    match text(flag, raw)? {
        "off" | "" => Ok(None),
        _ => duration(flag, raw, bare, min, max).map(Some),
    }
}

/// The duration a text says, with `bare` as the unit of a bare number.
pub fn parse_duration(text: &str, bare: Duration) -> Option<Duration> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let unit_secs = match unit {
        "" => bare.as_secs_f64(),
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * unit_secs).ok()
}

fn unit_name(unit: Duration) -> &'static str {
    match unit.as_millis() {
        1 => "milliseconds",
        86_400_000 => "days",
        _ => "seconds",
    }
}

/// `50 ms`, `2 s`, `1 d`: for messages.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{} ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s => format!("{s} s"),
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
            number_or_off("--n", os(""), 1, 9).unwrap(),
            None,
            "empty is off"
        );
    }

    #[test]
    fn sizes_and_durations_take_units() {
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("10G"), Some(10_000_000_000));
        assert_eq!(parse_size("10GB"), Some(10_000_000_000));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("8kib"), Some(8192));
        assert_eq!(parse_size("99999999T"), None, "overflow");
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("10 G"), None);
        assert_eq!(parse_size(""), None);
        let secs = Duration::from_secs(1);
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_duration("120", secs), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("2m", secs), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_duration("1.5h", secs),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("15d", secs), Some(15 * day));
        assert_eq!(parse_duration("7", day), Some(7 * day));
        assert_eq!(
            parse_duration("500ms", secs),
            Some(Duration::from_millis(500))
        );
        for bad in ["", "x", "2 m", "-1", "1e3", "3y", "."] {
            assert_eq!(parse_duration(bad, secs), None, "{bad:?}");
        }
        let message = duration("--idle-timeout", os("0s"), secs, secs, day)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("--idle-timeout") && message.contains("from 1 s to 1 d"),
            "{message}"
        );
        assert!(
            size("--rotate-bytes", os("1x"), 1, u64::MAX)
                .unwrap_err()
                .to_string()
                .contains("--rotate-bytes")
        );
        assert_eq!(size_or_off("--b", os("off"), 1, 9).unwrap(), None);
        assert_eq!(size_or_off("--b", os(""), 1, 9).unwrap(), None);
        assert_eq!(
            duration_or_off("--d", os(""), secs, secs, day).unwrap(),
            None
        );
        assert_eq!(
            duration_or_off("--d", os("off"), secs, secs, day).unwrap(),
            None
        );
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
