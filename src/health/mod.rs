//! Health and metrics over HTTP, on one helper thread: `/check` for supervisors and uptime
//! monitors, `/metrics` for Prometheus, `/status` as JSON, and `/` a self-contained status page
//! (`status.html`, compiled in) that polls `/status`.
//!
//! The thread only reads `Stats`; it never takes a lock the main loop waits for, so a slow or
//! hostile client cannot slow archiving down. Rendering takes the time as an argument, so tests
//! can check it without a server; only `/metrics` reads something, this process's figures from
//! `/proc`. `server.rs` holds the connections, within bounds.

mod server;

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::stats::{RATE_BUCKET_SECS, Samples, Stats};
use crate::times;

/// The status page: one HTML file with inline CSS and script, no external resources.
pub const STATUS_PAGE: &str = include_str!("status.html");

/// What `/check` and friends answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub(super) fn text(code: u16, body: impl Into<String>) -> Reply {
        Reply {
            code,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Where the health endpoint listens and when `/check` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub addr: SocketAddr,
    /// `/check` fails when no event came for this long.
    pub max_silence: Duration,
}

/// Starts the health server; returns the bound address (useful with port 0).
pub fn spawn(cfg: Config, stats: Arc<Stats>) -> io::Result<SocketAddr> {
    server::spawn(cfg, stats)
}

/// Routes one request.
pub fn respond(
    method: &str,
    url: &str,
    stats: &Stats,
    now_ms: i64,
    max_silence: Duration,
) -> Reply {
    let path = url.split('?').next().unwrap_or_default();
    let known = matches!(path, "/" | "/check" | "/metrics" | "/status");
    if !known {
        return Reply::text(404, "not found: try /, /check, /metrics or /status\n");
    }
    if method != "GET" && method != "HEAD" {
        return Reply::text(405, "method not allowed: use GET or HEAD\n");
    }
    match path {
        "/check" => match check(stats, now_ms, max_silence) {
            Ok(()) => Reply::text(200, "OK\n"),
            Err(reason) => Reply::text(500, format!("{reason}\n")),
        },
        "/" => Reply {
            code: 200,
            content_type: "text/html; charset=utf-8",
            body: STATUS_PAGE.to_string(),
        },
        "/metrics" => Reply {
            code: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics(stats, now_ms, Process::read().as_ref()),
        },
        _ => Reply {
            code: 200,
            content_type: "application/json",
            body: status(stats, now_ms, max_silence),
        },
    }
}

/// Healthy while an event arrived within `max_silence`, writing works, and shipping (when on)
/// is neither failing for want of an operator nor behind by more than `--max-ship-lag`.
pub fn check(stats: &Stats, now_ms: i64, max_silence: Duration) -> Result<(), String> {
    stats.ship.check(now_ms)?;
    let since = stats
        .write_error_since
        .load(std::sync::atomic::Ordering::Relaxed);
    if since != 0 {
        let error = stats
            .write_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        return Err(format!(
            "writing fails since {} ({error})",
            times::clock_time(since)
        ));
    }
    let last = stats
        .last_event_at_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let reference = if last == 0 {
        stats
            .started_at_ms
            .load(std::sync::atomic::Ordering::Relaxed)
    } else {
        last
    };
    let silence_ms = (now_ms - reference).max(0);
    let silence_s = silence_ms / 1000;
    if silence_ms as u128 > max_silence.as_millis() {
        return Err(if last == 0 {
            format!("no event since start {silence_s} s ago")
        } else {
            format!("no event for {silence_s} s")
        });
    }
    Ok(())
}

/// Writes one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP wikistream_{name} {help}");
    let _ = writeln!(out, "# TYPE wikistream_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "wikistream_{name}{labels} {value}");
    }
}

fn label(key: &str, value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{{{key}=\"{escaped}\"}}")
}

fn plain(value: impl ToString) -> Vec<(String, String)> {
    vec![(String::new(), value.to_string())]
}

/// What Prometheus clients export as `process_*`, read from `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Process {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

/// Linux reports CPU times in clock ticks of 1/100 s on every architecture we build for
/// (USER_HZ); reading sysconf would need unsafe code.
const TICKS_PER_SECOND: f64 = 100.0;

impl Process {
    /// This process's figures, or `None` without `/proc`.
    pub fn read() -> Option<Process> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| {
                limits
                    .lines()
                    .find(|l| l.starts_with("Max open files"))?
                    .split_whitespace()
                    .nth(3)?
                    .parse()
                    .ok()
            });
        Some(Process {
            resident_bytes: rss_kb * 1024,
            cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
            open_fds,
            max_fds,
        })
    }
}

/// One metric family without the `wikistream_` prefix (the `process_*` convention).
fn process_family(out: &mut String, name: &str, kind: &str, help: &str, value: String) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The Prometheus text format 0.0.4: every counter of `Stats::counters`, the gauges, and the
/// `process_*` family every official client exports.
pub fn metrics(stats: &Stats, now_ms: i64, process: Option<&Process>) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::with_capacity(4096);
    for counter in stats.counters() {
        let samples = match &counter.samples {
            Samples::Plain(n) => plain(n),
            Samples::Labelled(key, pairs) => pairs
                .iter()
                .map(|(value, n)| (label(key, value), n.to_string()))
                .collect(),
            Samples::Cross(key_a, key_b, triples) => triples
                .iter()
                .map(|(a, b, n)| {
                    let (la, lb) = (label(key_a, a), label(key_b, b));
                    // `{a="x"}` and `{b="y"}` make `{a="x",b="y"}`.
                    let labels = format!("{},{}", &la[..la.len() - 1], &lb[1..]);
                    (labels, n.to_string())
                })
                .collect(),
        };
        family(&mut out, counter.metric, "counter", counter.help, &samples);
    }
    family(
        &mut out,
        "connected",
        "gauge",
        "1 while a stream connection is open.",
        &plain(u8::from(stats.connected.load(Relaxed))),
    );
    let last_event = stats.last_event_at_ms.load(Relaxed);
    family(
        &mut out,
        "last_event_timestamp_seconds",
        "gauge",
        "When the last event arrived (Unix time).",
        &plain(seconds(last_event)),
    );
    family(
        &mut out,
        "lag_seconds",
        "gauge",
        "Now minus meta.dt of the last archived event.",
        &plain(lag_seconds(stats, now_ms)),
    );
    family(
        &mut out,
        "open_file_bytes",
        "gauge",
        "Compressed size of the open archive file.",
        &plain(stats.open_file_bytes.load(Relaxed)),
    );
    family(
        &mut out,
        "last_checkpoint_timestamp_seconds",
        "gauge",
        "When the last checkpoint was written (Unix time); 0 before the first.",
        &plain(seconds(stats.last_checkpoint_ms.load(Relaxed))),
    );
    if let Some(p) = process {
        process_family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.to_string(),
        );
        process_family(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds.to_string(),
        );
        process_family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            seconds(stats.started_at_ms.load(Relaxed)).to_string(),
        );
        process_family(
            &mut out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.to_string(),
        );
        if let Some(max) = p.max_fds {
            process_family(
                &mut out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max.to_string(),
            );
        }
    }
    for (name, help, value) in stats.ship.gauges(now_ms) {
        family(&mut out, name, "gauge", help, &plain(value));
    }
    family(
        &mut out,
        "build_info",
        "gauge",
        "Build information.",
        &[(label("version", env!("CARGO_PKG_VERSION")), "1".into())],
    );
    out
}

/// Now minus `meta.dt` of the last archived event; 0 before the first one.
fn lag_seconds(stats: &Stats, now_ms: i64) -> f64 {
    let last_dt = stats.last_dt_ms.load(std::sync::atomic::Ordering::Relaxed);
    if last_dt == 0 {
        0.0
    } else {
        (now_ms - last_dt) as f64 / 1000.0
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `/status`: the metrics as one JSON document, plus the open file, last id and uptime.
pub fn status(stats: &Stats, now_ms: i64, max_silence: Duration) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let text = stats
        .status_text
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    let health = check(stats, now_ms, max_silence);
    let last_event_ms = stats.last_event_at_ms.load(Relaxed);
    let series: serde_json::Map<String, serde_json::Value> = stats
        .rates
        .per_second(now_ms)
        .into_iter()
        .map(|(name, rates)| (name.to_string(), rates.into()))
        .collect();
    let top_wikis: Vec<serde_json::Value> = text
        .top_wikis
        .iter()
        .map(|(wiki, n)| serde_json::json!({"wiki": wiki, "events": n}))
        .collect();
    let completed: Vec<serde_json::Value> = text
        .completed
        .iter()
        .map(|file| {
            serde_json::json!({
                "name": file.name,
                "bytes": file.bytes,
                "completed_at": times::rfc3339_ms(file.at_ms),
            })
        })
        .collect();
    let mut document = serde_json::json!({
        "healthy": health.is_ok(),
        "health": health.err().unwrap_or_else(|| "OK".into()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": (now_ms - stats.started_at_ms.load(Relaxed)) / 1000,
        "connected": stats.connected.load(Relaxed),
        "events_archived": stats.events_archived.load(Relaxed),
        "open_file": text.open_file,
        "open_file_bytes": stats.open_file_bytes.load(Relaxed),
        "last_event_id": text.last_event_id,
        "last_event_timestamp_seconds": seconds(last_event_ms),
        "seconds_since_last_event": (last_event_ms != 0).then(|| seconds(now_ms - last_event_ms)),
        "lag_seconds": lag_seconds(stats, now_ms),
        "rates_per_second": {"bucket_seconds": RATE_BUCKET_SECS, "series": series},
        "top_wikis": top_wikis,
        "completed_files": completed,
        "shipping": stats.ship.status(now_ms),
    });
    for counter in stats.counters() {
        let value: serde_json::Value = match counter.samples {
            Samples::Plain(n) => n.into(),
            Samples::Labelled(_, pairs) => pairs
                .into_iter()
                .map(|(k, n)| (k, n.into()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            Samples::Cross(key_a, key_b, triples) => {
                // One object of sums per key: `events_archived_by_stream`, `…_by_type`.
                for (key, pick) in [(key_a, 0), (key_b, 1)] {
                    let mut sums = serde_json::Map::new();
                    for (a, b, n) in &triples {
                        let name = if pick == 0 { a } else { b };
                        let total = sums
                            .get(name)
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0);
                        sums.insert(name.clone(), (total + n).into());
                    }
                    document[format!("{}_by_{key}", counter.status)] = sums.into();
                }
                continue;
            }
        };
        document[counter.status] = value;
    }
    document.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    const SILENCE: Duration = Duration::from_secs(300);

    #[test]
    fn routes_methods_and_paths() {
        let stats = Stats::default();
        assert_eq!(respond("GET", "/nope", &stats, 0, SILENCE).code, 404);
        assert_eq!(respond("POST", "/check", &stats, 0, SILENCE).code, 405);
        assert_eq!(respond("HEAD", "/check", &stats, 0, SILENCE).code, 200);
        assert_eq!(
            respond("GET", "/check?x=1", &stats, 0, SILENCE).body,
            "OK\n"
        );
    }

    #[test]
    fn check_reports_silence_and_write_errors() {
        let stats = Stats::default();
        stats.started_at_ms.store(1_000_000, Relaxed);
        assert_eq!(
            check(&stats, 1_000_000 + 301_000, SILENCE),
            Err("no event since start 301 s ago".into())
        );
        stats.last_event_at_ms.store(2_000_000, Relaxed);
        assert_eq!(check(&stats, 2_000_000 + 299_000, SILENCE), Ok(()));
        assert_eq!(
            check(&stats, 2_000_000 + 412_000, SILENCE),
            Err("no event for 412 s".into())
        );
        stats.write_error_since.store(1_738_325_103, Relaxed);
        *stats.write_error.lock().unwrap() = "No space left on device".into();
        assert_eq!(
            check(&stats, 2_000_000, SILENCE),
            Err("writing fails since 12:05:03Z (No space left on device)".into())
        );
    }

    #[test]
    fn metrics_have_help_type_and_labels() {
        let stats = Stats::default();
        stats
            .archived_by_stream
            .add("mediawiki.recentchange", crate::event::EventType::Edit);
        stats.rejects.add(crate::event::RejectReason::Oversize);
        let process = Process {
            resident_bytes: 4 << 20,
            cpu_seconds: 1.5,
            open_fds: 9,
            max_fds: Some(1024),
        };
        let text = metrics(&stats, 0, Some(&process));
        assert!(text.contains("# TYPE wikistream_events_archived_total counter\n"));
        assert!(text.contains(
            "wikistream_events_archived_total{stream=\"mediawiki.recentchange\",type=\"edit\"} 1\n"
        ));
        assert!(text.contains("process_resident_memory_bytes 4194304\n"));
        assert!(text.contains("process_open_fds 9\n"));
        assert!(text.contains("# TYPE wikistream_received_bytes_total counter\n"));
        assert!(text.contains("wikistream_last_checkpoint_timestamp_seconds 0\n"));
        assert!(Process::read().is_some_and(|p| p.resident_bytes > 0 && p.open_fds > 0));
        assert!(text.contains("wikistream_rejects_total{reason=\"oversize\"} 1\n"));
        assert!(text.contains("wikistream_build_info{version=\""));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
        }
        assert_eq!(label("s", "a\"b"), "{s=\"a\\\"b\"}");
    }

    #[test]
    fn status_is_json() {
        let stats = Stats::default();
        stats.try_set_status_text("x.part", "[1]");
        let value: serde_json::Value =
            serde_json::from_str(&status(&stats, 5000, SILENCE)).unwrap();
        assert_eq!(value["open_file"], "x.part");
        assert_eq!(value["last_event_id"], "[1]");
        assert_eq!(value["uptime_seconds"], 5);
        assert_eq!(value["seconds_since_last_event"], serde_json::Value::Null);
        assert_eq!(
            value["rates_per_second"]["series"]["edit"]
                .as_array()
                .unwrap()
                .len(),
            60
        );
        stats.note_completed(std::path::Path::new("/nonexistent/a.ndjson.gz"), 1_000);
        let value: serde_json::Value =
            serde_json::from_str(&status(&stats, 5000, SILENCE)).unwrap();
        assert_eq!(value["completed_files"][0]["name"], "a.ndjson.gz");
        assert_eq!(
            value["completed_files"][0]["completed_at"],
            "1970-01-01T00:00:01Z"
        );
    }

    #[test]
    fn the_status_page_is_small_and_self_contained() {
        let reply = respond("GET", "/", &Stats::default(), 0, SILENCE);
        assert_eq!(reply.code, 200);
        assert!(reply.content_type.starts_with("text/html"));
        assert!(reply.body.len() < 12 * 1024, "{} bytes", reply.body.len());
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!reply.body.contains(external), "page loads {external}");
        }
        // Every field the page reads is in /status.
        let status: serde_json::Value =
            serde_json::from_str(&status(&Stats::default(), 0, SILENCE)).unwrap();
        for (idx, _) in reply.body.match_indices("s.") {
            let before = reply.body[..idx].chars().next_back().unwrap_or(' ');
            if before.is_ascii_alphanumeric() || before == '_' {
                continue;
            }
            let key: String = reply.body[idx + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if key.len() > 2 {
                assert!(status.get(&key).is_some(), "/status lacks {key}");
            }
        }
    }
}
