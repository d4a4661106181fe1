//! An S3 bucket: where `s3://BUCKET/PREFIX` and the endpoint put an object, and the requests
//! the shipper makes (PUT from a file, HEAD, a listing), signed with Signature V4.
//!
//! An upload is read from the file twice, once for its SHA-256 and once as the body, so memory
//! stays the same whatever the file's size. The hash is the signed `x-amz-content-sha256`: a
//! server refuses a body that does not match it (`XAmzContentSHA256Mismatch`, `BadDigest`),
//! and it is kept as the object's `x-amz-meta-sha256` for `ship --check`.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::macros::format_description;

use super::answer::{Answer, classify, xml_blocks, xml_text};
use super::credentials::Source;
use super::sigv4::{self, EMPTY_PAYLOAD_SHA256};
use super::{Failure, FailureKind};

/// How long a connection may take to open, and a socket read or write to make progress.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of an answer's body read (errors and listing pages are a few KB).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// The buffer the hash is read with.
const HASH_BUFFER_BYTES: usize = 16 * 1024;
/// ureq's buffers for the connection to the bucket, each way.
const IO_BUFFER_BYTES: usize = 16 * 1024;
/// The most pages of a listing read (each at most 1000 keys).
const MAX_LIST_PAGES: usize = 100_000;
/// The user metadata that carries the SHA-256 of an object's bytes.
pub const SHA256_META: &str = "x-amz-meta-sha256";

/// Where objects go: `s3://BUCKET/PREFIX` with its endpoint and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
    /// `scheme://host[:port]` of a custom endpoint (path-style addressing), or `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
}

impl Target {
    /// Reads `s3://BUCKET[/PREFIX]`; `endpoint` is `--s3-endpoint` or the environment's.
    pub fn parse(url: &str, endpoint: Option<&str>, region: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?}: expected s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Err(format!(
                "{bucket:?}: a bucket name is 3 to 63 lower-case letters, digits, '-' and '.'"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix
            .split('/')
            .all(|seg| seg != "." && seg != ".." && (prefix.is_empty() || !seg.is_empty()))
            && !prefix.bytes().any(|b| b.is_ascii_control());
        if !prefix_ok {
            return Err(format!("{prefix:?}: not a usable key prefix"));
        }
        let endpoint = match endpoint {
            None => None,
            Some(e) => {
                let e = e.trim_end_matches('/');
                let host = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"));
                if !host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@'])) {
                    return Err(format!("{e:?}: expected http(s)://HOST[:PORT]"));
                }
                Some(e.to_string())
            }
        };
        let region_ok = !region.is_empty()
            && region.len() <= 64
            && region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !region_ok {
            return Err(format!("{region:?}: not a region name"));
        }
        Ok(Target {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            endpoint,
            region: region.to_string(),
        })
    }

    /// The object key of `rel`, a path relative to the archive directory.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// The URL base (`scheme://host`), the `Host` header and the encoded path of `key` (empty:
    /// the bucket itself).
    fn locate(&self, key: &str) -> (String, String, String) {
        let (base, path) = match &self.endpoint {
            Some(endpoint) => (endpoint.clone(), format!("/{}/{key}", self.bucket)),
            // Virtual-hosted, as AWS wants; a bucket with dots would break the certificate.
            None if !self.bucket.contains('.') => (
                format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region),
                format!("/{key}"),
            ),
            None => (
                format!("https://s3.{}.amazonaws.com", self.region),
                format!("/{}/{key}", self.bucket),
            ),
        };
        let host = base.split_once("://").map_or("", |(_, h)| h).to_string();
        (base, host, sigv4::encode_path(&path))
    }

    /// `s3://BUCKET/PREFIX`, for logs.
    pub fn display(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// What a HEAD found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub sha256: Option<String>,
}

/// A bucket to talk to.
pub struct Bucket {
    pub target: Target,
    credentials: Source,
    agent: ureq::Agent,
}

/// A request's body.
enum Body<'a> {
    Empty,
    File(&'a File),
    Bytes(&'a [u8]),
}

impl Bucket {
    pub fn new(target: Target, credentials: Source) -> Bucket {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("wikistream-archiver/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(IO_TIMEOUT))
            .timeout_per_write(Some(IO_TIMEOUT))
            .max_idle_connections(1)
            // An answer is a few KB and the body streams from the file: ureq's 128 KB
            // buffers each way would be most of the thread's memory.
            .input_buffer_size(IO_BUFFER_BYTES)
            .output_buffer_size(IO_BUFFER_BYTES)
            .build();
        Bucket {
            target,
            credentials,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Uploads the file at `path` as `key`; returns its size.
    pub fn put_file(&self, key: &str, path: &Path) -> Result<u64, Failure> {
        let local = |e: std::io::Error| {
            Failure::new(FailureKind::Local, format!("{}: {e}", path.display()))
        };
        let mut file = File::open(path).map_err(local)?;
        let size = file.metadata().map_err(local)?.len();
        let sha = sha256_of(&mut file).map_err(local)?;
        file.rewind().map_err(local)?;
        let meta = [
            (SHA256_META, sha.as_str()),
            ("content-type", "application/gzip"),
        ];
        self.request("PUT", key, &[], &meta, &sha, Body::File(&file))?;
        Ok(size)
    }

    /// Uploads `bytes` as `key`.
    pub fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Failure> {
        let sha = sigv4::sha256_hex(bytes);
        let meta = [(SHA256_META, sha.as_str()), ("content-type", content_type)];
        self.request("PUT", key, &[], &meta, &sha, Body::Bytes(bytes))?;
        Ok(())
    }

    /// The size and recorded hash of `key`, or `None` when there is no such object.
    pub fn head(&self, key: &str) -> Result<Option<Head>, Failure> {
        match self.request("HEAD", key, &[], &[], EMPTY_PAYLOAD_SHA256, Body::Empty) {
            Ok(answer) => Ok(Some(Head {
                size: answer
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                sha256: answer.header(SHA256_META).map(str::to_string),
            })),
            Err(f) if f.status == Some(404) && f.kind == FailureKind::Refused => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// Every object under `prefix` (a full key prefix) with its size, in key order; at most
    /// `MAX_LIST_PAGES` pages, so that a server that always says "more" cannot keep it going.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Failure> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token".into(), token.clone()));
            }
            let answer = self.request("GET", "", &query, &[], EMPTY_PAYLOAD_SHA256, Body::Empty)?;
            for contents in xml_blocks(&answer.body, "Contents") {
                let key = xml_text(contents, "Key").unwrap_or_default();
                let size = xml_text(contents, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((key, size));
            }
            token = xml_text(&answer.body, "NextContinuationToken");
            if xml_text(&answer.body, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                return Ok(out);
            }
        }
        Err(Failure::new(
            FailureKind::Refused,
            format!("the listing of {prefix} goes on past {MAX_LIST_PAGES} pages"),
        ))
    }

    /// Sends one signed request; a 2xx answer is `Ok`, anything else a classified `Failure`.
    fn request(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        extra: &[(&str, &str)],
        payload_sha256: &str,
        body: Body<'_>,
    ) -> Result<Answer, Failure> {
        let creds = self
            .credentials
            .load()
            .map_err(|e| Failure::new(FailureKind::Credentials, e))?;
        let (base, host, path) = self.target.locate(key);
        let amz_date = amz_date(SystemTime::now());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload_sha256.into()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if let Some(token) = &creds.session_token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let signed = sigv4::Request {
            method,
            path: &path,
            query,
            headers: &headers,
            payload_sha256,
        };
        let auth = sigv4::authorization(&creds, &self.target.region, &amz_date, &signed);
        let query = sigv4::canonical_query(query);
        let url = match query.is_empty() {
            true => format!("{base}{path}"),
            false => format!("{base}{path}?{query}"),
        };
        let builder = ureq::http::Request::builder().method(method).uri(&url);
        let builder = headers
            .iter()
            .filter(|(name, _)| name != "host")
            .fold(builder, |b, (name, value)| b.header(name, value))
            .header("authorization", auth);
        let mut response = match body {
            Body::Empty => self.send(builder, ()),
            Body::File(file) => self.send(builder, file),
            Body::Bytes(bytes) => self.send(builder, bytes),
        }?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .unwrap_or_default();
        let answer = Answer { headers, body };
        match status {
            200..=299 => Ok(answer),
            _ => Err(classify(status, &answer)),
        }
    }
}

impl Bucket {
    fn send(
        &self,
        builder: ureq::http::request::Builder,
        body: impl ureq::AsSendBody,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let request = builder
            .body(body)
            .map_err(|e| Failure::new(FailureKind::Refused, e.to_string()))?;
        self.agent
            .run(request)
            .map_err(|e| Failure::new(FailureKind::Network, e.to_string()))
    }
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    at.format(&format).unwrap_or_default()
}

/// The hex SHA-256 of a file's bytes from where it is read.
fn sha256_of(file: &mut File) -> std::io::Result<String> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; HASH_BUFFER_BYTES];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(sigv4::hex(context.finish().as_ref()));
        }
        context.update(&buffer[..n]);
    }
}

/// The hex SHA-256 of the file at `path`.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    sha256_of(&mut File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_keys() {
        let t = Target::parse(
            "s3://wikistream/archive/",
            Some("http://127.0.0.1:3900/"),
            "garage",
        )
        .unwrap();
        assert_eq!(t.prefix, "archive/");
        assert_eq!(
            t.key("recentchange/date=2024-11-23/a.ndjson.gz"),
            "archive/recentchange/date=2024-11-23/a.ndjson.gz"
        );
        let (base, host, path) = t.locate(&t.key("r/date=2024-11-23/a b"));
        assert_eq!(base, "http://127.0.0.1:3900");
        assert_eq!(host, "127.0.0.1:3900");
        assert_eq!(path, "/wikistream/archive/r/date%3D2024-11-23/a%20b");
        let aws = Target::parse("s3://my-bucket", None, "eu-west-1").unwrap();
        assert_eq!(aws.prefix, "");
        let (base, host, path) = aws.locate("k");
        assert_eq!(
            (base.as_str(), host.as_str(), path.as_str()),
            (
                "https://my-bucket.s3.eu-west-1.amazonaws.com",
                "my-bucket.s3.eu-west-1.amazonaws.com",
                "/k"
            )
        );
        for bad in [
            "http://b/p",
            "s3://A",
            "s3://ab",
            "s3://bucket/../x",
            "s3://bucket/a//b",
        ] {
            assert!(Target::parse(bad, None, "r").is_err(), "{bad}");
        }
        assert!(Target::parse("s3://bucket", Some("ftp://x"), "r").is_err());
        assert!(Target::parse("s3://bucket", None, "r/x").is_err());
    }

    #[test]
    fn amz_dates() {
        assert_eq!(
            amz_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)),
            "20130524T000000Z"
        );
    }
}
