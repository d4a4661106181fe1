//! `--on-ready`: a program started with each completed event file's path, never waited for.
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

    /// Starts the program for `path`; a failure to start is logged, not returned.
    pub fn start(&mut self, path: &Path) {
        let Some(program) = &self.program else {
            return;
        };
        match Command::new(program).arg(path).stdin(Stdio::null()).spawn() {
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
