//! `--on-ready CMD` as a destination: CMD runs with a completed file's path and its key (the
//! path relative to the archive directory), one at a time, and the file counts as delivered
//! when it exits 0. A CMD still running after `--on-ready-timeout` is killed, and the file is
//! tried again later, so CMD must be idempotent for a key (`rclone copyto`, `aws s3 cp` and a
//! `curl -T` PUT are).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Failure, FailureKind};

/// How often a running child is looked at.
const POLL: Duration = Duration::from_millis(50);

/// The program and its time limit.
#[derive(Debug, Clone)]
pub struct Hook {
    pub program: OsString,
    pub timeout: Duration,
}

impl Hook {
    /// Runs the program for `path` (key `rel`) and waits for it, at most `timeout`.
    pub fn deliver(&self, path: &Path, rel: &str) -> Result<(), Failure> {
        let name = self.program.to_string_lossy();
        let mut child = Command::new(&self.program)
            .arg(path)
            .arg(rel)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Failure::new(FailureKind::Command, format!("cannot start {name}: {e}")))?;
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(Failure::new(
                        FailureKind::Command,
                        format!("{name} {rel}: {status}"),
                    ));
                }
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::new(
                        FailureKind::Timeout,
                        format!(
                            "{name} {rel}: still running after {} s (--on-ready-timeout), killed",
                            self.timeout.as_secs()
                        ),
                    ));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::new(
                        FailureKind::Command,
                        format!("{name} {rel}: {e}"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout_ms: u64) -> (tempfile::TempDir, Hook) {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("hook.sh");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hook = Hook {
            program: program.into_os_string(),
            timeout: Duration::from_millis(timeout_ms),
        };
        (dir, hook)
    }

    #[test]
    fn exit_zero_delivers_and_the_rest_fail_with_a_reason() {
        let (dir, ok) = hook(
            "test \"$2\" = k/a.gz && echo \"$1\" > \"$(dirname \"$0\")/seen\"",
            5_000,
        );
        ok.deliver(Path::new("/x/k/a.gz"), "k/a.gz").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("seen")).unwrap(),
            "/x/k/a.gz\n"
        );
        let (_dir, failing) = hook("exit 3", 5_000);
        let failure = failing.deliver(Path::new("/x"), "k").unwrap_err();
        assert_eq!(failure.kind, FailureKind::Command);
        assert!(
            failure.message.contains("exit status: 3"),
            "{}",
            failure.message
        );
        let (_dir, hanging) = hook("sleep 30", 200);
        let started = Instant::now();
        let failure = hanging.deliver(Path::new("/x"), "k").unwrap_err();
        assert_eq!(failure.kind, FailureKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(10));
        let missing = Hook {
            program: "/nonexistent/program".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            missing.deliver(Path::new("/x"), "k").unwrap_err().kind,
            FailureKind::Command
        );
    }
}
