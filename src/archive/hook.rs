//! `--on-ready`: a program started with each completed event file's path and key (the path
//! relative to the archive directory, e.g. `recentchange/date=2025-01-31/….ndjson.gz`), never
//! waited for.
//!
//! Children are collected without blocking (`reap`) and their failures logged; archiving goes
//! on whatever they do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `--on-ready` program and its children still running.
#[derive(Debug, Default)]
pub struct OnReady {
    program: Option<OsString>,
    children: Vec<(Child, PathBuf)>,
}

impl OnReady {
    /// Runs `program` (if any) for every completed file.
    pub fn new(program: Option<OsString>) -> OnReady {
        OnReady {
            program,
            children: Vec::new(),
        }
    }

    /// Starts the program for `path`, whose key is `key`; a failure to start is logged, not
    /// returned.
    pub fn start(&mut self, path: &Path, key: &str) {
        let Some(program) = &self.program else {
            return;
        };
        let mut command = Command::new(program);
        command.arg(path).arg(key).stdin(Stdio::null());
        match command.spawn() {
            Ok(child) => self.children.push((child, path.to_path_buf())),
            Err(e) => log::warn!(
                "--on-ready {}: cannot start it for {}: {e}",
                program.to_string_lossy(),
                path.display()
            ),
        }
    }

    /// Collects finished children and logs their failures; never blocks.
    pub fn reap(&mut self) {
        self.children
            .retain_mut(|(child, path)| match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        log::warn!("--on-ready failed for {}: {status}", path.display());
                    }
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    log::warn!("--on-ready for {}: {e}", path.display());
                    false
                }
            });
    }
}
