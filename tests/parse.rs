//! `parse`: the parser's black-box surface, against a hand-written expected output.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::util;

#[test]
fn parse_file_matches_hand_written_expectation() {
    let dir = util::temp_dir();
    let input = util::fixture("sse-edge-cases.txt");
    let finished = util::run_binary(
        &["parse", input.to_str().expect("utf-8 path")],
        dir.path(),
        Duration::from_secs(30),
    );
    assert!(finished.status.success(), "stderr: {}", finished.stderr);
    let expected = std::fs::read_to_string(util::fixture("sse-edge-cases.expected.ndjson"))
        .expect("expected file");
    assert_eq!(finished.stdout, expected);
}

#[test]
fn parse_reads_stdin() {
    let mut child = util::command()
        .arg("parse")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning parse");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written in two pieces with a CR / LF split between them.
    stdin.write_all(b"data: a\r").expect("write");
    stdin.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(50));
    stdin.write_all(b"\n\r\nretry: 7\n").expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("waiting for parse");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "{\"event\":\"message\",\"data\":\"a\",\"id\":\"\"}\n{\"retry\":7}\n"
    );
}

#[test]
fn parse_missing_file_is_a_clear_error() {
    let dir = util::temp_dir();
    let finished = util::run_binary(
        &["parse", "/nonexistent/capture.txt"],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(finished.status.code(), Some(1));
    assert!(
        finished.stderr.contains("opening /nonexistent/capture.txt"),
        "{}",
        finished.stderr
    );
}
