//! What the shipper thread tells the observers: its backlog, what it delivered, its failures
//! by reason, and what only an operator can fix. The shipper is the only writer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::Labelled;
use crate::labels::ShipFailure;

/// Shipping's numbers; all zero while shipping is off.
#[derive(Debug)]
pub struct ShipStats {
    /// Set when `--ship-to` or `--on-ready` is given.
    pub enabled: AtomicBool,
    /// Completed files not confirmed yet, and their bytes.
    pub pending_files: AtomicU64,
    pub pending_bytes: AtomicU64,
    /// When the oldest pending file was completed (its modification time, Unix ms); 0: none.
    pub oldest_pending_ms: AtomicI64,
    /// Files (and day marks) confirmed, and the bytes of the files.
    pub delivered: AtomicU64,
    pub bytes_shipped: AtomicU64,
    pub failures: Labelled<ShipFailure>,
    /// `/check` fails when the oldest pending file is older than this (ms); 0: never.
    pub max_lag_ms: AtomicI64,
    /// The destination (`s3://bucket/prefix/`, or the `--on-ready` program), without secrets.
    pub destination: Mutex<String>,
    /// The failure an operator must fix, while it lasts; empty otherwise.
    pub problem: Mutex<String>,
}

impl Default for ShipStats {
    fn default() -> ShipStats {
        ShipStats {
            enabled: AtomicBool::new(false),
            pending_files: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            oldest_pending_ms: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            bytes_shipped: AtomicU64::new(0),
            failures: Labelled::new(),
            max_lag_ms: AtomicI64::new(0),
            destination: Mutex::new(String::new()),
            problem: Mutex::new(String::new()),
        }
    }
}

impl ShipStats {
    /// Sets the backlog.
    pub fn set_pending(&self, files: u64, bytes: u64, oldest_ms: i64) {
        self.pending_files.store(files, Ordering::Relaxed);
        self.pending_bytes.store(bytes, Ordering::Relaxed);
        self.oldest_pending_ms.store(oldest_ms, Ordering::Relaxed);
    }

    /// Sets (or with `""` clears) the operator's problem.
    pub fn set_problem(&self, text: &str) {
        if let Ok(mut problem) = self.problem.lock() {
            problem.clear();
            problem.push_str(text);
        }
    }

    /// The age of the oldest pending file at `now_ms`, in seconds; 0 with none.
    pub fn oldest_pending_age_s(&self, now_ms: i64) -> f64 {
        match self.oldest_pending_ms.load(Ordering::Relaxed) {
            0 => 0.0,
            oldest => (now_ms - oldest).max(0) as f64 / 1000.0,
        }
    }

    /// The gauges of `/metrics` (name without the prefix, help, value); none while off.
    pub fn gauges(&self, now_ms: i64) -> Vec<(&'static str, &'static str, String)> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Vec::new();
        }
        vec![
            (
                "ship_pending_files",
                "Completed files not shipped yet.",
                self.pending_files.load(Ordering::Relaxed).to_string(),
            ),
            (
                "ship_pending_bytes",
                "Bytes of the completed files not shipped yet.",
                self.pending_bytes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "ship_oldest_pending_age_seconds",
                "Seconds since the oldest unshipped file was completed; 0 with none.",
                self.oldest_pending_age_s(now_ms).to_string(),
            ),
        ]
    }

    /// `/status`'s `shipping` object, or null while shipping is off.
    pub fn status(&self, now_ms: i64) -> serde_json::Value {
        if !self.enabled.load(Ordering::Relaxed) {
            return serde_json::Value::Null;
        }
        let text = |m: &Mutex<String>| m.lock().map(|t| t.clone()).unwrap_or_default();
        serde_json::json!({
            "destination": text(&self.destination),
            "pending_files": self.pending_files.load(Ordering::Relaxed),
            "pending_bytes": self.pending_bytes.load(Ordering::Relaxed),
            "oldest_pending_age_seconds": self.oldest_pending_age_s(now_ms),
            "problem": text(&self.problem),
        })
    }

    /// Why `/check` should fail, if shipping is behind or needs an operator.
    pub fn check(&self, now_ms: i64) -> Result<(), String> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Ok(());
        }
        let destination = self
            .destination
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let problem = self.problem.lock().map(|p| p.clone()).unwrap_or_default();
        if !problem.is_empty() {
            return Err(format!("shipping to {destination} fails: {problem}"));
        }
        let max_lag_ms = self.max_lag_ms.load(Ordering::Relaxed);
        let age = self.oldest_pending_age_s(now_ms);
        if max_lag_ms > 0 && age * 1000.0 > max_lag_ms as f64 {
            let files = self.pending_files.load(Ordering::Relaxed);
            return Err(format!(
                "shipping to {destination} is behind: the oldest of {files} unshipped files was completed {age:.0} s ago (--max-ship-lag {} s)",
                max_lag_ms / 1000
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_problem_then_the_lag() {
        let ship = ShipStats::default();
        ship.set_pending(3, 100, 1_000);
        assert_eq!(ship.check(10_000_000), Ok(()), "off");
        ship.enabled.store(true, Ordering::Relaxed);
        ship.max_lag_ms.store(3_600_000, Ordering::Relaxed);
        *ship.destination.lock().unwrap() = "s3://b/p/".into();
        assert_eq!(ship.check(1_000 + 3_600_000), Ok(()));
        let behind = ship.check(1_000 + 3_601_000).unwrap_err();
        assert!(
            behind.contains("oldest of 3 unshipped files was completed 3601 s ago"),
            "{behind}"
        );
        ship.set_problem("HTTP 403 InvalidAccessKeyId");
        let err = ship.check(2_000).unwrap_err();
        assert_eq!(
            err,
            "shipping to s3://b/p/ fails: HTTP 403 InvalidAccessKeyId"
        );
        ship.set_problem("");
        ship.set_pending(0, 0, 0);
        assert_eq!(ship.check(i64::MAX / 2), Ok(()));
    }
}
