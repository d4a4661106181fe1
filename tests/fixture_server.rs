//! Raw bytes the replay server never sends, from the scripted server: other event types,
//! multi-line data, mixed line endings and a BOM, split into awkward TCP writes.

use crate::util;
use crate::util::scripted::{Reply, ScriptedServer};

#[test]
fn odd_framing_is_archived_or_rejected_correctly() {
    // Each event has a `meta.dt`, which the partitioned layout needs.
    let body: &[u8] = b"\xEF\xBB\xBF: hello\r\n\
        event: message\r\nid: 1\r\ndata: {\"meta\":{\"id\":\"a\",\"dt\":\"2024-11-23T09:00:00Z\"},\"n\":1}\r\n\r\n\
        event: error\rid: 2\rdata: {\"type\":\"error\"}\r\r\
        id: 3\ndata: {\"meta\":{\"id\":\"b\",\"dt\":\"2024-11-23T09:00:00Z\"},\ndata: \"n\":2}\n\n\
        id: 4\ndata: {\"meta\":{\"id\":\"a\",\"dt\":\"2024-11-23T09:00:00Z\"},\"n\":1}\n\n\
        : keep-alive\n\
        id: 5\ndata: {\"meta\":{\"id\":\"c\",\"dt\":\"2024-11-23T09:00:00Z\"},\"t\":\"\xC3\xA9\xF0\x9F\x8C\x85\"}\n\n";
    // Close-delimited body: the archiver reads until the test server goes quiet.
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
    response.extend_from_slice(body);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    for piece_len in [1, 5, 4096] {
        let _ = std::fs::remove_dir_all(&output_dir);
        let response = response.clone();
        let server =
            ScriptedServer::start(move |_, _| Reply::in_pieces(response.clone(), piece_len));
        let url = format!("http://127.0.0.1:{}/v2/stream/odd", server.port);
        let finished = util::run_archiver(&url, &output_dir, &["--max-events", "3"], dir.path());
        assert!(finished.status.success(), "{}", finished.stderr);
        assert_eq!(
            util::archive_lines(&output_dir),
            [
                "{\"meta\":{\"id\":\"a\",\"dt\":\"2024-11-23T09:00:00Z\"},\"n\":1}",
                // Multi-line data is joined with LF; the LF is JSON whitespace, archived as a space.
                "{\"meta\":{\"id\":\"b\",\"dt\":\"2024-11-23T09:00:00Z\"}, \"n\":2}",
                "{\"meta\":{\"id\":\"c\",\"dt\":\"2024-11-23T09:00:00Z\"},\"t\":\"é🌅\"}",
            ],
            "piece length {piece_len}"
        );
        assert!(
            finished.stderr.contains("1 duplicate dropped"),
            "{}",
            finished.stderr
        );
        let rejects = util::rejects(&output_dir);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0]["reason"], "unexpected_type");
        assert_eq!(rejects[0]["event"], "error");
        assert_eq!(rejects[0]["id"], "2");
        assert_eq!(rejects[0]["data"], "{\"type\":\"error\"}");
        let names = util::data_files(&output_dir);
        assert!(names[0].starts_with("odd/date="), "{names:?}");
        assert!(util::base_name(&names[0]).starts_with("odd-"), "{names:?}");
        server.stop();
    }
}

#[test]
fn a_200_that_is_not_an_event_stream_is_refused_on_the_first_connection() {
    let server = ScriptedServer::start(|_, _| {
        Reply::whole(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\n<html>hi</html>"
                .to_vec(),
        )
    });
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    let finished = util::run_archiver(&server.url(), &output_dir, &[], dir.path());
    server.stop();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert!(finished.stderr.contains("text/html"), "{}", finished.stderr);
}
