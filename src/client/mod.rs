//! The HTTP side: one ureq agent (rustls, verified certificates), the stream request with its
//! headers, reading the body with a short poll tick, and the reconnect backoff policy.
//!
//! It does not parse SSE or decide what to do with events, and it never sleeps: `run` owns the
//! loop and the signals. `transport.rs` holds the poll tick, `backoff.rs` the pure backoff
//! policy with its jitter (seeded from the clock, the one clock read here).

mod backoff;
mod transport;

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::unversioned::transport::DefaultConnector;

pub use self::backoff::{Backoff, Jitter};
use self::transport::PollingConnector;

/// How long one body read may block before control returns to the main loop, which then checks
/// signals and the idle timer. Half a second keeps SIGTERM handling well inside 2 s.
pub const BODY_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// TCP connect (including TLS handshake): generous for a Pi on a slow link, short enough that a
/// dead address is retried soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// From sending the request to the end of the response headers. EventStreams answers at once;
/// a server that does not answer in this time is treated like a failed connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an error response body is shown to the user.
const ERROR_BODY_BYTES: usize = 200;

/// The longest wait a `Retry-After` header can ask for. A server under load may ask for
/// minutes; a broken or hostile one must not park archiving for hours. Longer requests are cut
/// to this, with a log line.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What can go wrong while opening or reading the stream.
#[derive(Debug)]
pub enum Error {
    /// DNS, TCP, TLS or HTTP protocol failure before a response arrived.
    Transport(ureq::Error),
    /// The server answered with a status other than 200.
    Status {
        code: u16,
        url: String,
        body: String,
        retry_after: Option<Duration>,
    },
    /// A 200 response that is not an event stream (e.g. a captive portal page).
    NotEventStream { url: String, content_type: String },
    /// A 200 response compressed although we did not ask for it (`Content-Encoding`).
    UnexpectedEncoding { url: String, encoding: String },
    /// The request was abandoned because the process is shutting down.
    ShuttingDown,
    /// `--ca-file` could not be used.
    CaFile { path: PathBuf, message: String },
}

impl Error {
    /// True when trying again later may succeed without the user changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A redirect loop is a configuration problem until proven otherwise.
            Error::Transport(ureq::Error::TooManyRedirects) => false,
            Error::Transport(_) | Error::ShuttingDown => true,
            Error::Status { code, .. } => *code == 429 || *code == 408 || *code >= 500,
            Error::NotEventStream { .. }
            | Error::UnexpectedEncoding { .. }
            | Error::CaFile { .. } => false,
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(ureq::Error::TooManyRedirects) => {
                write!(f, "too many redirects (a redirect loop?)")
            }
            Error::Transport(e) => write!(f, "{e}"),
            Error::Status {
                code, url, body, ..
            } => {
                write!(f, "{url} answered HTTP {code}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Error::NotEventStream { url, content_type } => {
                write!(
                    f,
                    "{url} answered 200 with Content-Type '{content_type}', not text/event-stream"
                )
            }
            Error::UnexpectedEncoding { url, encoding } => write!(
                f,
                "{url} answered with Content-Encoding '{encoding}', which was not asked for: \
                 the body cannot be read as an event stream"
            ),
            Error::ShuttingDown => write!(f, "shutting down"),
            Error::CaFile { path, message } => {
                write!(f, "reading CA file {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// What the client connects to and how it introduces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The full stream URL.
    pub url: String,
    pub user_agent: String,
    /// Trust only the CA certificates in this PEM file instead of the bundled roots.
    pub ca_file: Option<PathBuf>,
}

/// Opens stream connections; one at a time, from the main thread.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    /// Set while a response body is being read: only then is each read cut to `BODY_POLL_INTERVAL`.
    streaming: Arc<AtomicBool>,
    /// Set on SIGTERM/SIGINT: a request waiting for its response headers gives up.
    shutdown: Arc<AtomicBool>,
}

impl Client {
    /// An agent for `cfg.url` sending `cfg.user_agent`, trusting `cfg.ca_file` if given. A
    /// request waiting for its response gives up within `BODY_POLL_INTERVAL` of `shutdown` being set.
    pub fn new(cfg: &Config, shutdown: Arc<AtomicBool>) -> Result<Client, Error> {
        let (url, user_agent, ca_file) = (&cfg.url, &cfg.user_agent, cfg.ca_file.as_deref());
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(user_agent.as_str())
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            // A stream lasts 15 minutes or more: no global, per-call or body budget may cut it.
            .timeout_global(None)
            .timeout_per_call(None)
            .timeout_recv_body(None)
            // Each connection is one long response; reusing it is never useful.
            .max_idle_connections(0);
        match trust_roots(ca_file)? {
            Roots::Certs(certs, source) => {
                log::info!("trusting {} CA certificates from {source}", certs.len());
                let tls = ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build();
                config = config.tls_config(tls);
            }
            Roots::Bundled(why) => {
                log::info!("trusting the Mozilla roots built into this binary ({why})");
            }
        }
        let streaming = Arc::new(AtomicBool::new(false));
        let connector = PollingConnector {
            inner: DefaultConnector::new(),
            streaming: Arc::clone(&streaming),
            shutdown: Arc::clone(&shutdown),
        };
        let agent = ureq::Agent::with_parts(
            config.build(),
            connector,
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        Ok(Client {
            agent,
            url: url.clone(),
            streaming,
            shutdown,
        })
    }

    /// Sends the stream request; on 200 returns the open stream.
    ///
    /// `last_event_id` resumes after that event; `since_ms` asks for events from that time on.
    pub fn open(
        &self,
        last_event_id: Option<&str>,
        since_ms: Option<i64>,
    ) -> Result<Stream, Error> {
        self.streaming.store(false, Ordering::Relaxed);
        let url = stream_url(&self.url, since_ms);
        let mut request = self
            .agent
            .get(&url)
            .header("Accept", "text/event-stream")
            .header("Cache-Control", "no-cache");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(_) if self.shutdown.load(Ordering::Relaxed) => return Err(Error::ShuttingDown),
            Err(e) => return Err(Error::Transport(e)),
        };
        let code = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after =
            header("retry-after").and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()));
        let content_type = header("content-type").unwrap_or_default();
        let encoding = header("content-encoding").unwrap_or_default();
        let mut body = response.into_body();
        if code != 200 {
            self.streaming.store(true, Ordering::Relaxed);
            let body = read_error_body(body.as_reader());
            return Err(Error::Status {
                code,
                url,
                body,
                retry_after,
            });
        }
        if !content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(Error::NotEventStream { url, content_type });
        }
        if !matches!(
            encoding.trim().to_ascii_lowercase().as_str(),
            "" | "identity"
        ) {
            return Err(Error::UnexpectedEncoding { url, encoding });
        }
        self.streaming.store(true, Ordering::Relaxed);
        Ok(Stream {
            reader: body.into_reader(),
        })
    }
}

/// A `Retry-After` value as a wait from `now`: delay seconds or an HTTP-date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`). A date in the past means no wait; anything else that
/// cannot be read is ignored. The caller caps the result (`MAX_RETRY_AFTER`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    let now = time::OffsetDateTime::from(now);
    let wait = date - now;
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Debian's (and most distributions') bundle of the system's trusted CAs, kept current by the
/// `ca-certificates` package.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Which CA certificates verify servers.
enum Roots {
    /// These, read from the named source.
    Certs(Vec<ureq::tls::Certificate<'static>>, String),
    /// The webpki roots compiled in, and why.
    Bundled(String),
}

/// `--ca-file` if given (an error if unusable); else `SSL_CERT_FILE` if set, else the system
/// bundle, when they can be read; else the bundled roots. The system bundle is updated by the
/// operating system for years after this binary was built.
fn trust_roots(ca_file: Option<&std::path::Path>) -> Result<Roots, Error> {
    if let Some(path) = ca_file {
        let certs = read_certs(path).map_err(|message| Error::CaFile {
            path: path.into(),
            message,
        })?;
        return Ok(Roots::Certs(certs, format!("--ca-file {}", path.display())));
    }
    let (path, source) = match std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), "SSL_CERT_FILE"),
        None => (PathBuf::from(SYSTEM_CA_BUNDLE), "the system bundle"),
    };
    match read_certs(&path) {
        Ok(certs) => Ok(Roots::Certs(certs, format!("{source} {}", path.display()))),
        Err(message) => Ok(Roots::Bundled(format!(
            "{source} {} is not usable: {message}",
            path.display()
        ))),
    }
}

/// The certificates of a PEM file; an error says why there are none.
fn read_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// `url` with `since=` added when asked for.
pub fn stream_url(url: &str, since_ms: Option<i64>) -> String {
    match since_ms {
        None => url.to_string(),
        Some(ms) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}since={ms}")
        }
    }
}

/// The first `ERROR_BODY_BYTES` of an error body, as one readable line.
fn read_error_body(reader: impl Read) -> String {
    let mut bytes = Vec::new();
    // An error body that is slow or broken must not hide the status: ignore read errors.
    let _ = reader.take(ERROR_BODY_BYTES as u64).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What one read of the stream gave.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes arrived.
    Data(usize),
    /// Nothing arrived within `BODY_POLL_INTERVAL`; the connection may still be fine.
    Idle,
    /// The server ended the response.
    End,
}

/// An open event stream (the body of a 200 response).
pub struct Stream {
    reader: ureq::BodyReader<'static>,
}

impl Stream {
    /// Reads what is available, waiting at most `BODY_POLL_INTERVAL`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        match self.reader.read(buf) {
            Ok(0) => Ok(ReadOutcome::End),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e) if is_poll_timeout(&e) => Ok(ReadOutcome::Idle),
            Err(e) => Err(e),
        }
    }
}

fn is_poll_timeout(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return true;
    }
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>());
    matches!(inner, Some(ureq::Error::Timeout(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_added_to_the_query() {
        assert_eq!(
            stream_url("http://h/v2/stream/rc", None),
            "http://h/v2/stream/rc"
        );
        assert_eq!(
            stream_url("http://h/v2/stream/rc", Some(5)),
            "http://h/v2/stream/rc?since=5"
        );
        assert_eq!(
            stream_url("http://h/s?x=1", Some(5)),
            "http://h/s?x=1&since=5"
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("9223372036854775807", now),
            Some(Duration::from_secs(9_223_372_036_854_775_807))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retryable_statuses() {
        let status = |code| Error::Status {
            code,
            url: String::new(),
            body: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(!Error::Transport(ureq::Error::TooManyRedirects).is_retryable());
        let encoding = Error::UnexpectedEncoding {
            url: "u".into(),
            encoding: "gzip".into(),
        };
        assert!(!encoding.is_retryable());
        assert!(encoding.to_string().contains("gzip"));
    }
}
