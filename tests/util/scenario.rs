//! The setup most tests share, as one builder: events, an upstream (`serve`) that offers them
//! with the faults its flags inject, an archiver run into a fresh archive directory, and the
//! assertions on what it wrote.
//!
//! ```text
//! let scenario = Scenario::events(make_events(200, 1)).serve(&["--disconnect-every", "40"]);
//! scenario.archive(&["--max-events", "200"]).expect(0, &[]);
//! scenario.assert_archived_all();
//! ```

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::events::{archiver, write_input};
use super::{Finished, Running, Serve};

/// Events to offer, before an upstream serves them.
pub struct Events {
    dir: tempfile::TempDir,
    events: Vec<String>,
    input: PathBuf,
}

/// A temp dir, the events an upstream serves, and the archive directory.
pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub events: Vec<String>,
    /// `None` once stopped.
    upstream: RefCell<Option<Serve>>,
    pub output_dir: PathBuf,
}

impl Scenario {
    /// `events`, written as the upstream's input.
    pub fn events(events: Vec<String>) -> Events {
        let dir = super::temp_dir();
        let input = write_input(dir.path(), &events);
        Events { dir, events, input }
    }

    /// The fixture's events as they are (`recentchange-200.ndjson`).
    pub fn fixture() -> Events {
        let input = super::fixture("recentchange-200.ndjson");
        Events {
            dir: super::temp_dir(),
            events: super::lines_of(&input),
            input,
        }
    }

    /// The upstream's stream URL.
    pub fn url(&self) -> String {
        let upstream = self.upstream.borrow();
        upstream.as_ref().expect("the upstream is running").url()
    }

    /// The upstream's port.
    pub fn upstream_port(&self) -> u16 {
        let upstream = self.upstream.borrow();
        upstream.as_ref().expect("the upstream is running").port
    }

    /// The temp dir (logs, scripts, inputs).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The archiver's command line on the upstream, into the archive directory.
    pub fn command(&self, flags: &[&str]) -> Command {
        archiver(&self.url(), &self.output_dir, flags)
    }

    /// Runs the archiver with `flags` to its end (at most a minute).
    pub fn archive(&self, flags: &[&str]) -> Finished {
        super::run_archiver(&self.url(), &self.output_dir, flags, self.path())
    }

    /// Starts the archiver with `flags`; its logs are named after `name`.
    pub fn start(&self, flags: &[&str], name: &str) -> Running {
        Running::start(self.command(flags), self.path(), name)
    }

    /// The archived lines, decompressed, in file order.
    pub fn archived(&self) -> Vec<String> {
        super::archive_lines(&self.output_dir)
    }

    /// Asserts that the archive holds exactly `expected`, in order, none twice.
    pub fn assert_archived(&self, expected: &[String]) {
        super::assert_same_events(&self.archived(), expected);
    }

    /// Asserts that the archive holds exactly every served event but the canaries.
    pub fn assert_archived_all(&self) {
        self.assert_archived(&super::expected_archive(&self.events));
    }

    /// Stops the upstream explicitly and returns its log.
    pub fn stop(&self) -> String {
        let upstream = self.upstream.borrow_mut().take();
        let upstream = upstream.expect("the upstream is running");
        let log = upstream.stderr();
        upstream.stop();
        log
    }
}

impl Events {
    /// The same events, offered from a gzip file.
    pub fn gzipped(mut self) -> Events {
        use std::io::Write;
        let path = self.dir.path().join("input.ndjson.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("creating the gzip input"),
            flate2::Compression::default(),
        );
        let text = std::fs::read(&self.input).expect("reading the input");
        encoder.write_all(&text).expect("writing the gzip input");
        encoder.finish().expect("finishing the gzip input");
        self.input = path;
        self
    }

    /// An upstream `serve` offering the events with `flags`.
    pub fn serve(self, flags: &[&str]) -> Scenario {
        let upstream = Serve::start(&self.input, flags, self.dir.path());
        let output_dir = self.dir.path().join("archive");
        Scenario {
            dir: self.dir,
            events: self.events,
            upstream: RefCell::new(Some(upstream)),
            output_dir,
        }
    }
}
