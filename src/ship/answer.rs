//! What an S3 server answered: the headers and a bounded body, and what a refusal means for the
//! shipper (`classify`: the failure's kind, its words, `Retry-After`). Pure: no I/O; the clock
//! only to tell a wrong one.

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::macros::format_description;

use super::{Failure, FailureKind};

/// An answer's headers and (bounded) body.
pub struct Answer {
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The most the server's clock (its `Date`) may differ from ours before a refusal is put down
/// to the clock: S3 refuses requests 15 minutes off, Garage those a day old.
const MAX_SKEW_S: i64 = 15 * 60;

/// What a non-2xx answer means for the shipper.
pub fn classify(status: u16, answer: &Answer) -> Failure {
    let (date, retry_after) = (answer.header("date"), answer.header("retry-after"));
    classify_parts(status, &answer.body, date, retry_after)
}

/// `classify` of an answer's status, body and `Date` and `Retry-After` headers.
pub fn classify_parts(
    status: u16,
    body: &str,
    date: Option<&str>,
    retry_after: Option<&str>,
) -> Failure {
    let code = xml_text(body, "Code").unwrap_or_default();
    let message = xml_text(body, "Message").unwrap_or_default();
    let skewed = date.and_then(parse_http_date).is_some_and(|server| {
        (server - OffsetDateTime::now_utc().unix_timestamp()).abs() > MAX_SKEW_S
    });
    let kind = match (status, code.as_str()) {
        (_, "RequestTimeTooSkewed") => FailureKind::Clock,
        (400 | 403, _) if skewed => FailureKind::Clock,
        (_, "NoSuchBucket") => FailureKind::NoBucket,
        (_, "SlowDown") | (429, _) | (503, _) => FailureKind::Throttled,
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "ExpiredToken"
            | "InvalidToken",
        )
        | (401 | 403, _) => FailureKind::Credentials,
        // A body that does not match its hash was damaged on the way: send it again (Garage
        // says InvalidDigest, as we send no Content-MD5 of our own to be malformed).
        (
            _,
            "XAmzContentSHA256Mismatch"
            | "BadDigest"
            | "InvalidDigest"
            | "IncompleteBody"
            | "RequestTimeout",
        ) => FailureKind::Server,
        (500..=599, _) => FailureKind::Server,
        _ => FailureKind::Refused,
    };
    let mut text = format!("HTTP {status}");
    if !code.is_empty() {
        text.push_str(&format!(" {code}"));
    }
    if !message.is_empty() {
        text.push_str(&format!(": {message}"));
    }
    if kind == FailureKind::Clock {
        let server = date.unwrap_or("unknown");
        text.push_str(&format!(
            " (this machine's clock is wrong: it says {}, the server {server}; fix the time, \
             e.g. with NTP)",
            times_now_text()
        ));
    }
    let retry_after = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Failure {
        kind,
        message: text,
        retry_after,
        status: Some(status),
    }
}

/// The Unix time of an HTTP date (`Mon, 07 Dec 2026 10:15:53 GMT`).
fn parse_http_date(text: &str) -> Option<i64> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(text.trim(), &format).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

fn times_now_text() -> String {
    let now = OffsetDateTime::from(SystemTime::now());
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    now.format(&format).unwrap_or_default()
}

/// The text of the first `<tag>` element of `xml`, entities decoded.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    xml_blocks(xml, tag).next().map(unescape)
}

/// The contents of every `<tag>…</tag>` in `xml` (no nesting of the same tag).
pub fn xml_blocks<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let block = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(block)
    })
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_classified() {
        let answer = |body: &str| Answer {
            headers: ureq::http::HeaderMap::new(),
            body: body.into(),
        };
        let xml = |code: &str| {
            format!(
                "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m &amp; n</Message></Error>"
            )
        };
        assert_eq!(
            classify(403, &answer(&xml("RequestTimeTooSkewed"))).kind,
            FailureKind::Clock
        );
        assert_eq!(
            classify(404, &answer(&xml("NoSuchBucket"))).kind,
            FailureKind::NoBucket
        );
        assert_eq!(
            classify(403, &answer(&xml("InvalidAccessKeyId"))).kind,
            FailureKind::Credentials
        );
        assert_eq!(
            classify(400, &answer(&xml("XAmzContentSHA256Mismatch"))).kind,
            FailureKind::Server
        );
        assert_eq!(classify(503, &answer("")).kind, FailureKind::Throttled);
        let mut far = answer(&xml("InvalidRequest"));
        far.headers
            .insert("date", "Mon, 07 Dec 2099 10:15:53 GMT".parse().unwrap());
        let failure = classify(400, &far);
        assert_eq!(failure.kind, FailureKind::Clock);
        assert!(
            failure.message.contains("clock is wrong"),
            "{}",
            failure.message
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:01:00 GMT"), Some(60));
        assert_eq!(classify(404, &answer("")).kind, FailureKind::Refused);
        let failure = classify(403, &answer(&xml("AccessDenied")));
        assert_eq!(failure.message, "HTTP 403 AccessDenied: m & n");
    }

    #[test]
    fn listing_pages_are_read() {
        let page = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key>\
                    <Size>3</Size></Contents><Contents><Key>c</Key><Size>4</Size></Contents>\
                    <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        let keys: Vec<String> = xml_blocks(page, "Contents")
            .map(|c| xml_text(c, "Key").unwrap())
            .collect();
        assert_eq!(keys, ["a&b", "c"]);
        assert_eq!(
            xml_text(page, "NextContinuationToken").as_deref(),
            Some("t1")
        );
    }
}
