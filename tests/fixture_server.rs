//! An in-test server that sends raw bytes the replay server never would: other event types,
//! multi-line data, mixed line endings and a BOM, split into awkward TCP writes.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::util;

/// Accepts one connection, reads the request head, writes `response` in pieces of `piece_len`
/// bytes, then keeps the socket open until the client goes away. Returns the port.
fn serve_once(response: Vec<u8>, piece_len: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).expect("read request");
            if n == 0 {
                return;
            }
            head.extend_from_slice(&buf[..n]);
        }
        for piece in response.chunks(piece_len) {
            if socket
                .write_all(piece)
                .and_then(|()| socket.flush())
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = socket.set_read_timeout(Some(Duration::from_secs(30)));
        let _ = socket.read(&mut buf);
    });
    port
}

#[test]
fn odd_framing_is_archived_or_rejected_correctly() {
    let body: &[u8] = b"\xEF\xBB\xBF: hello\r\n\
        event: message\r\nid: 1\r\ndata: {\"meta\":{\"id\":\"a\"},\"n\":1}\r\n\r\n\
        event: error\rid: 2\rdata: {\"type\":\"error\"}\r\r\
        id: 3\ndata: {\"meta\":{\"id\":\"b\"},\ndata: \"n\":2}\n\n\
        id: 4\ndata: {\"meta\":{\"id\":\"a\"},\"n\":1}\n\n\
        : keep-alive\n\
        id: 5\ndata: {\"meta\":{\"id\":\"c\"},\"t\":\"\xC3\xA9\xF0\x9F\x8C\x85\"}\n\n";
    // Close-delimited body: the archiver reads until the test server goes quiet.
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
    response.extend_from_slice(body);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    for piece_len in [1, 5, 4096] {
        let _ = std::fs::remove_dir_all(&output_dir);
        let port = serve_once(response.clone(), piece_len);
        let url = format!("http://127.0.0.1:{port}/v2/stream/odd");
        let finished = util::run_archiver(&url, &output_dir, &["--max-events", "3"], dir.path());
        assert!(finished.status.success(), "{}", finished.stderr);
        assert_eq!(
            util::archive_lines(&output_dir),
            [
                "{\"meta\":{\"id\":\"a\"},\"n\":1}",
                // Multi-line data is joined with LF; the LF is JSON whitespace, archived as a space.
                "{\"meta\":{\"id\":\"b\"}, \"n\":2}",
                "{\"meta\":{\"id\":\"c\"},\"t\":\"é🌅\"}",
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
    }
}

#[test]
fn a_200_that_is_not_an_event_stream_is_refused_on_the_first_connection() {
    let port = serve_once(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\n<html>hi</html>"
            .to_vec(),
        4096,
    );
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    let url = format!("http://127.0.0.1:{port}/v2/stream/x");
    let finished = util::run_archiver(&url, &output_dir, &[], dir.path());
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert!(finished.stderr.contains("text/html"), "{}", finished.stderr);
}
