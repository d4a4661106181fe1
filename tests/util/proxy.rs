//! A fault-injecting HTTP proxy in front of the S3 server: each request (one per connection:
//! it adds `connection: close` both ways) is passed on, refused with 503 and `Retry-After`, cut
//! after some bytes of its body, or slowed down, as the test's script says.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with the `n`-th request (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// 503 SlowDown with `Retry-After: secs`, after reading the request's body.
    Unavailable {
        retry_after: u64,
    },
    /// Pass on the head and this many bytes of the body, then close both sides.
    CutAfter(usize),
    /// Pass on the body at this many bytes per second.
    Slow(usize),
    /// Pass on the body with the byte at this offset changed (damage on the way).
    Flip(usize),
}

pub struct Proxy {
    pub port: u16,
    n_requests: Arc<AtomicUsize>,
    /// The request lines seen, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

type Script = dyn Fn(usize, &str) -> Fault + Send + Sync;

impl Proxy {
    /// Listens on a free port and passes requests to `upstream` as `script` says.
    pub fn start(
        upstream: u16,
        script: impl Fn(usize, &str) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("addr").port();
        let n_requests = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (n, seen, stopped) = (
            Arc::clone(&n_requests),
            Arc::clone(&requests),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (n, seen, script) = (Arc::clone(&n), Arc::clone(&seen), Arc::clone(&script));
                std::thread::spawn(move || {
                    let _ = handle(client, upstream, &n, &seen, &*script);
                });
            }
        });
        Proxy {
            port,
            n_requests,
            requests,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn n_requests(&self) -> usize {
        self.n_requests.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads up to the end of a head; returns it and what came after it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = bytes.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&bytes).into_owned(), rest));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 || bytes.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// The head with `connection: close` instead of any connection header.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

fn content_length(head: &str) -> usize {
    head.split("\r\n")
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn handle(
    mut client: TcpStream,
    upstream: u16,
    n: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    script: &Script,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, mut body) = read_head(&mut client)?;
    let line = head.lines().next().unwrap_or_default().to_string();
    let idx = n.fetch_add(1, Ordering::Relaxed);
    seen.lock().expect("lock").push(line.clone());
    let fault = script(idx, &line);
    let length = content_length(&head);
    if let Fault::Unavailable { retry_after } = fault {
        let mut buf = vec![0u8; 16 * 1024];
        while body.len() < length {
            let got = client.read(&mut buf)?;
            if got == 0 {
                break;
            }
            body.extend_from_slice(&buf[..got]);
        }
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                   <Message>Please reduce your request rate.</Message></Error>";
        let reply = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: {retry_after}\r\ncontent-type: application/xml\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{xml}",
            xml.len()
        );
        client.write_all(reply.as_bytes())?;
        return Ok(());
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    server.write_all(closing(&head).as_bytes())?;
    let limit = match fault {
        Fault::CutAfter(bytes) => bytes.min(length),
        _ => length,
    };
    let rate = match fault {
        Fault::Slow(rate) => Some(rate),
        _ => None,
    };
    let mut sent = 0;
    let mut chunk = body;
    let mut buf = vec![0u8; 4096];
    loop {
        let take = chunk.len().min(limit - sent);
        if let Fault::Flip(at) = fault
            && (sent..sent + take).contains(&at)
        {
            chunk[at - sent] ^= 0x20;
        }
        server.write_all(&chunk[..take])?;
        sent += take;
        if let Some(rate) = rate {
            std::thread::sleep(Duration::from_secs_f64(take as f64 / rate as f64));
        }
        if sent >= limit {
            break;
        }
        let want = buf.len().min(rate.unwrap_or(buf.len()).max(1));
        let got = client.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        chunk = buf[..got].to_vec();
    }
    if matches!(fault, Fault::CutAfter(_)) {
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let (reply_head, rest) = read_head(&mut server)?;
    client.write_all(closing(&reply_head).as_bytes())?;
    client.write_all(&rest)?;
    std::io::copy(&mut server, &mut client)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
