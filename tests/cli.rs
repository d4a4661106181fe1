//! Command-line behaviour of the real binary: help, version, usage errors and their exit codes.

use std::time::Duration;

use crate::util;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn help_documents_every_run_flag_and_exits_0() {
    let dir = util::temp_dir();
    let finished = util::run_binary(&["--help"], dir.path(), TIMEOUT);
    assert!(finished.status.success());
    for flag in [
        "--stream",
        "--url",
        "--base-url",
        "--output-dir",
        "--since",
        "--user-agent",
        "--idle-timeout",
        "--max-events",
        "--level",
        "--keep-canary",
        "--max-event-bytes",
        "--ca-file",
        "[default: 120]",
        "[default: 5]",
        "help tail|cat|verify|parse|serve",
    ] {
        assert!(
            finished.stdout.contains(flag),
            "--help does not mention {flag}"
        );
    }
    assert!(
        !finished.stdout.contains("--disconnect-every"),
        "serve's flags are in its own help"
    );
    // Each subcommand's help shows its own flags, whichever way it is asked for.
    for args in [&["serve", "--help"][..], &["help", "serve"][..]] {
        let finished = util::run_binary(args, dir.path(), TIMEOUT);
        finished.expect(0, &[]);
        for flag in [
            "--disconnect-every",
            "--cut-mid-event",
            "--stall-after",
            "--status-first",
            "--rate",
        ] {
            assert!(
                finished.stdout.contains(flag),
                "{args:?} does not mention {flag}"
            );
        }
        assert!(
            !finished.stdout.contains("--output-dir"),
            "{args:?}: {}",
            finished.stdout
        );
    }
    let finished = util::run_binary(&["verify", "--help"], dir.path(), TIMEOUT);
    assert!(finished.stdout.contains("--offset-slack") && !finished.stdout.contains("--stream"));
}

#[test]
fn a_typo_gets_the_closest_flag() {
    let dir = util::temp_dir();
    let finished = util::run_binary(&["--outptu-dir", "x"], dir.path(), TIMEOUT);
    finished.expect(2, &["'--outptu-dir'", "did you mean '--output-dir'?"]);
}

#[test]
fn version_prints_the_crate_version() {
    let dir = util::temp_dir();
    let finished = util::run_binary(&["--version"], dir.path(), TIMEOUT);
    assert!(finished.status.success());
    assert_eq!(
        finished.stdout.trim(),
        format!("wikistream-archiver {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_name_the_flag_hint_at_help_and_exit_2() {
    let dir = util::temp_dir();
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "--frobnicate"),
        (&["--level", "10"], "--level"),
        (&["run", "--idle-timeout", "soon"], "--idle-timeout"),
        (&["--since", "last tuesday"], "--since"),
        (&["--max-events"], "--max-events"),
        (&["serve", "--port", "99999", "--input", "x"], "--port"),
        (&["parse", "a", "b"], "b"),
    ];
    for (args, needle) in cases {
        let finished = util::run_binary(args, dir.path(), TIMEOUT);
        assert_eq!(
            finished.status.code(),
            Some(2),
            "{args:?}: {}",
            finished.stderr
        );
        let first_line = finished.stderr.lines().next().unwrap_or_default();
        assert!(
            first_line.contains(needle),
            "{args:?}: first line {first_line:?}"
        );
        assert!(
            finished.stderr.contains("--help"),
            "{args:?}: {}",
            finished.stderr
        );
        assert!(finished.stdout.is_empty());
    }
}

#[test]
fn unwritable_output_dir_is_a_clear_error() {
    let dir = util::temp_dir();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").expect("creating a file");
    let output_dir = blocker.join("archive");
    let finished = util::run_archiver(
        "http://127.0.0.1:9/v2/stream/x",
        &output_dir,
        &[],
        dir.path(),
    );
    assert_eq!(finished.status.code(), Some(1));
    assert!(
        finished.stderr.contains(&output_dir.display().to_string()),
        "{}",
        finished.stderr
    );
}

#[test]
fn under_journald_lines_carry_their_priority_and_no_timestamp() {
    use std::os::unix::fs::MetadataExt;
    let dir = util::temp_dir();
    let serve = util::Serve::start(&util::fixture("recentchange-200.ndjson"), &[], dir.path());
    for (name, matches) in [("journal", true), ("elsewhere", false)] {
        // Running::start truncates this very file for stderr: the same device and inode.
        let stderr_path = dir.path().join(format!("{name}.stderr"));
        std::fs::write(&stderr_path, b"").expect("stderr file");
        let meta = std::fs::metadata(&stderr_path).expect("stat");
        let ino = if matches { meta.ino() } else { meta.ino() + 1 };
        let mut cmd = util::command();
        cmd.args(["--url", &serve.url(), "--output-dir"])
            .arg(dir.path().join(format!("archive-{name}")))
            .args(["--max-events", "5"])
            .env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()));
        let finished = util::Running::start(cmd, dir.path(), name).wait(TIMEOUT);
        finished.expect(0, &[]);
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert!(lines.len() >= 3, "{}", finished.stderr);
        if matches {
            assert!(
                lines
                    .iter()
                    .all(|l| l.starts_with("<6>") || l.starts_with("<4>")),
                "{}",
                finished.stderr
            );
            assert!(
                lines.iter().any(|l| l.starts_with("<6>archiving ")),
                "{}",
                finished.stderr
            );
        } else {
            assert!(
                lines.iter().all(|l| l.starts_with("20")),
                "{}",
                finished.stderr
            );
        }
    }
    serve.stop();
}

#[test]
fn bash_completion_completes_flags_of_the_subcommand() {
    if std::env::var_os("CROSS_RUNNER").is_some() {
        println!("skipped: the completion script is the same for every target");
        return;
    }
    let complete = |words: &str| {
        let script = format!(
            "source <('{}' completions bash); COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _wikistream_archiver; echo \"${{COMPREPLY[*]}}\"",
            util::bin().display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("wikistream-archiver --out"), "--output-dir");
    assert_eq!(
        complete("wikistream-archiver serve --disc"),
        "--disconnect-every"
    );
    assert_eq!(complete("wikistream-archiver ver"), "verify");
    assert_eq!(
        complete("wikistream-archiver tail --out"),
        "",
        "tail writes no files"
    );
    let dir = util::temp_dir();
    for shell in ["zsh", "fish"] {
        let finished = util::run_binary(&["completions", shell], dir.path(), TIMEOUT);
        finished.expect(0, &[]);
        assert!(finished.stdout.contains("disconnect-every"), "{shell}");
    }
    util::run_binary(&["completions", "tcsh"], dir.path(), TIMEOUT).expect(2, &["tcsh"]);
}
