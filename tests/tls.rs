//! The real TLS path: a rustls server on 127.0.0.1 with a certificate from a CA made at test time.
//! The archiver must verify it (`--ca-file`), refuse it without the CA, and keep reading a TLS
//! stream correctly across its 500 ms poll timeouts.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::util::{self, Running};

/// A CA (as PEM, for `--ca-file`) and a server configuration for `localhost` signed by it.
fn make_pki() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wikistream-archiver test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    (ca.pem(), Arc::new(config))
}

fn frame(idx: usize) -> String {
    format!(
        "event: message\nid: [{{\"offset\":{idx}}}]\ndata: {{\"meta\":{{\"id\":\"e{idx}\",\"dt\":\"2024-11-23T09:00:00Z\"}},\"n\":{idx}}}\n\n"
    )
}

/// Serves TLS connections: each gets 3 events, then (after a pause of several poll intervals) 3
/// more, then stays open. Returns the port.
fn serve_tls(config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).expect("server connection");
                let mut tls = rustls::StreamOwned::new(connection, socket);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return, // e.g. the client refused our certificate
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n".to_vec();
                out.extend((0..3).flat_map(|i| frame(i).into_bytes()));
                if tls.write_all(&out).and_then(|()| tls.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1600));
                // One event split across two TLS records, a poll interval apart.
                let rest: String = (3..6).map(frame).collect();
                let (first, second) = rest.split_at(rest.len() / 2);
                for piece in [first, second] {
                    if tls
                        .write_all(piece.as_bytes())
                        .and_then(|()| tls.flush())
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(700));
                }
                let _ = tls.sock.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = tls.read(&mut buf);
            });
        }
    });
    port
}

#[test]
fn verifies_the_server_with_ca_file_and_reads_across_poll_timeouts() {
    let (ca_pem, config) = make_pki();
    let port = serve_tls(config);
    let dir = util::temp_dir();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("writing CA");
    let output_dir = dir.path().join("archive");
    let url = format!("https://localhost:{port}/v2/stream/tls");
    let finished = util::run_binary(
        &[
            "--url",
            &url,
            "--ca-file",
            ca_file.to_str().expect("utf-8"),
            "--output-dir",
            output_dir.to_str().expect("utf-8"),
            "--max-events",
            "6",
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert!(finished.status.success(), "{}", finished.stderr);
    let expected: Vec<String> = (0..6)
        .map(|i| {
            format!("{{\"meta\":{{\"id\":\"e{i}\",\"dt\":\"2024-11-23T09:00:00Z\"}},\"n\":{i}}}")
        })
        .collect();
    util::assert_same_events(&util::archive_lines(&output_dir), &expected);
    assert_eq!(
        finished.stderr.matches("connected to").count(),
        1,
        "no reconnect expected: {}",
        finished.stderr
    );
}

#[test]
fn refuses_a_server_it_cannot_verify() {
    let (_, config) = make_pki();
    let port = serve_tls(config);
    let dir = util::temp_dir();
    let output_dir = dir.path().join("archive");
    let mut cmd = util::command();
    cmd.args([
        "--url",
        &format!("https://localhost:{port}/v2/stream/tls"),
        "--output-dir",
        output_dir.to_str().expect("utf-8"),
    ]);
    let running = Running::start(cmd, dir.path(), "run");
    running.wait_for_log("certificate", Duration::from_secs(20));
    running.signal("TERM");
    let finished = running.wait(Duration::from_secs(5));
    assert_eq!(finished.status.code(), Some(0));
    assert!(
        util::data_files(&output_dir).is_empty(),
        "nothing may be archived from an unverified server"
    );
}

#[test]
fn a_bad_ca_file_is_a_clear_error() {
    let dir = util::temp_dir();
    let ca_file = dir.path().join("not-a-cert.pem");
    std::fs::write(&ca_file, "hello").expect("writing");
    let finished = util::run_binary(
        &[
            "--url",
            "https://localhost:9/x",
            "--ca-file",
            ca_file.to_str().expect("utf-8"),
            "--output-dir",
            dir.path().join("a").to_str().expect("utf-8"),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(finished.status.code(), Some(1));
    assert!(
        finished.stderr.contains("not-a-cert.pem")
            && finished.stderr.contains("no PEM certificate"),
        "{}",
        finished.stderr
    );
}

/// Runs the archiver against `port` for 6 events with `extra` flags and `SSL_CERT_FILE`.
fn run_with_roots(
    port: u16,
    dir: &std::path::Path,
    extra: &[&str],
    cert_file: Option<&std::path::Path>,
) -> util::Finished {
    let mut cmd = util::command();
    cmd.args([
        "--url",
        &format!("https://localhost:{port}/v2/stream/tls"),
        "--output-dir",
    ])
    .arg(dir.join(format!("archive-{}", extra.len())))
    .args(["--max-events", "6"])
    .args(extra);
    match cert_file {
        Some(path) => cmd.env("SSL_CERT_FILE", path),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    let running = Running::start(cmd, dir, "roots");
    // A server it cannot verify is retried for ever: stop it once it says so.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < until {
        let log = running.stderr();
        if log.contains("certificate") && log.contains("reconnecting") {
            running.signal("TERM");
            break;
        }
        if log.contains("6 events (--max-events)") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.wait(Duration::from_secs(20))
}

#[test]
fn trust_comes_from_ca_file_then_ssl_cert_file_then_the_system_then_the_bundle() {
    let (ca_pem, config) = make_pki();
    let port = serve_tls(config);
    let dir = util::temp_dir();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("writing CA");
    let missing = dir.path().join("missing.pem");
    let ca = ca_file.to_str().expect("utf-8");

    // SSL_CERT_FILE names the test CA: trusted without --ca-file.
    let finished = run_with_roots(port, dir.path(), &[], Some(&ca_file));
    finished.expect(
        0,
        &["CA certificates from SSL_CERT_FILE", "archived 6 events"],
    );

    // --ca-file wins over an unusable SSL_CERT_FILE.
    let finished = run_with_roots(port, dir.path(), &["--ca-file", ca], Some(&missing));
    finished.expect(0, &["from --ca-file", "archived 6 events"]);

    // An unusable SSL_CERT_FILE falls back to the bundled roots, which do not know the test CA.
    let finished = run_with_roots(port, dir.path(), &["-v"], Some(&missing));
    finished.expect(0, &["Mozilla roots built into this binary", "certificate"]);
    assert!(
        !finished.stderr.contains("archived 6 events"),
        "{}",
        finished.stderr
    );

    // By default, the system bundle where there is one.
    let finished = run_with_roots(port, dir.path(), &["-v", "-v"], None);
    let system = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
    let expected = match system.exists() {
        true => "from the system bundle /etc/ssl/certs/ca-certificates.crt",
        false => "Mozilla roots built into this binary",
    };
    finished.expect(0, &[expected, "certificate"]);
}
