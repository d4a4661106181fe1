//! A real S3 server for the shipping tests: Garage (crates.io `garage`, installed by `make
//! garage`), one single-node cluster per test on free loopback ports, with a bucket and a key;
//! stopped and started again on the same directories for outages. The bucket is read back
//! with curl's own Signature V4 (`--aws-sigv4`), not with the archiver's code.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every test ships to.
pub const BUCKET: &str = "wikistream";
/// The region Garage signs for (its config's `s3_region`).
pub const REGION: &str = "garage";

/// One Garage server and what it was set up with.
pub struct Garage {
    dir: tempfile::TempDir,
    config: PathBuf,
    pub port: u16,
    server: Option<Child>,
    pub key_id: String,
    pub secret: String,
    /// `faketime` offset the server runs with (a skewed clock), if any.
    skew: Option<String>,
}

/// The Garage binary: `$GARAGE`, else `garage` on PATH.
fn garage_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GARAGE").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "the shipping tests need Garage, a real S3 server: `make garage` installs it \
         (cargo install garage --locked, about 13 minutes on 2 cores)"
    );
    PathBuf::from(path)
}

/// libfaketime's multithreaded library, from Debian's `faketime` package.
fn faketime_lib() -> PathBuf {
    let found = fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|arch| arch.path().join("faketime/libfaketimeMT.so.1"))
        .find(|lib| lib.exists());
    found.expect("the clock test needs libfaketime: apt-get install faketime")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Garage {
    /// Starts a one-node Garage with the bucket and a key allowed on it.
    pub fn start() -> Garage {
        let dir = super::temp_dir();
        let (port, rpc, admin) = (free_port(), free_port(), free_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + port as usize) % 256))
            .collect();
        let root = dir.path().display().to_string();
        let config = dir.path().join("garage.toml");
        fs::write(
            &config,
            format!(
                "metadata_dir = \"{root}/meta\"\ndata_dir = \"{root}/data\"\ndb_engine = \"lmdb\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{port}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"test\"\n"
            ),
        )
        .expect("writing garage.toml");
        let mut garage = Garage {
            dir,
            config,
            port,
            server: None,
            key_id: String::new(),
            secret: String::new(),
            skew: None,
        };
        garage.up();
        let status = garage.cli(&["status"]);
        let node = status
            .lines()
            .find_map(|l| {
                l.split_whitespace()
                    .next()
                    .filter(|w| w.len() == 16 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .unwrap_or_else(|| panic!("no node id in: {status}"))
            .to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.cli(&["bucket", "create", BUCKET]);
        let key = garage.cli(&["key", "create", "test-key"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in: {key}"))
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        garage.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "test-key",
        ]);
        garage
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("running garage");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "garage {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Starts the server (again) and waits until it answers.
    pub fn up(&mut self) {
        assert!(self.server.is_none(), "Garage runs already");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let mut cmd = Command::new(garage_bin());
        if let Some(offset) = &self.skew {
            // libfaketime (Debian's faketime) preloaded into the server itself, so that killing
            // it stops the server (the faketime program would fork it).
            cmd.env("LD_PRELOAD", faketime_lib())
                .env("FAKETIME", offset)
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        let child = cmd
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting garage server");
        self.server = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "Garage did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The RPC side takes a moment after the S3 port opens.
        let until = Instant::now() + Duration::from_secs(20);
        while !Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("status")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < until,
                "Garage is not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (an outage); the data stays.
    pub fn down(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the server with its clock moved by `offset` (faketime's syntax, "+2h").
    pub fn skew_clock(&mut self, offset: Option<&str>) {
        self.down();
        self.skew = offset.map(str::to_string);
        self.up();
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The archiver's flags to ship to `s3://BUCKET/prefix` here (credentials by `env`).
    pub fn flags(&self, prefix: &str) -> Vec<String> {
        vec![
            "--ship-to".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--s3-endpoint".into(),
            self.endpoint(),
            "--s3-region".into(),
            REGION.into(),
        ]
    }

    /// Sets the credentials in the environment of `cmd`.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }

    fn curl(&self, path_and_query: &str, out: Option<&Path>) -> Vec<u8> {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-f", "--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
            .args(["--user", &format!("{}:{}", self.key_id, self.secret)])
            .args(["-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]);
        if let Some(out) = out {
            cmd.arg("-o").arg(out);
        }
        let output = cmd
            .arg(format!("{}{path_and_query}", self.endpoint()))
            .output()
            .expect("curl");
        assert!(
            output.status.success(),
            "curl {path_and_query}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        output.stdout
    }

    /// Every object under `prefix`, with its size, in key order.
    pub fn objects(&self, prefix: &str) -> Vec<(String, u64)> {
        let encoded: String = prefix
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let xml = String::from_utf8(self.curl(
            &format!("/{BUCKET}/?list-type=2&max-keys=1000&prefix={encoded}"),
            None,
        ))
        .expect("utf-8");
        assert!(
            xml.contains("<IsTruncated>false</IsTruncated>"),
            "more than 1000 objects: {xml}"
        );
        let mut objects = Vec::new();
        for block in xml.split("<Contents>").skip(1) {
            let tag = |name: &str| {
                let start = block.find(&format!("<{name}>")).expect("tag") + name.len() + 2;
                let end = block[start..].find('<').expect("end") + start;
                block[start..end].replace("&amp;", "&")
            };
            objects.push((tag("Key"), tag("Size").parse().expect("size")));
        }
        objects
    }

    /// The bytes of object `key`.
    pub fn get(&self, key: &str, into: &Path) -> Vec<u8> {
        let path: String = key
            .split('/')
            .map(|seg| seg.replace('=', "%3D"))
            .collect::<Vec<_>>()
            .join("/");
        self.curl(&format!("/{BUCKET}/{path}"), Some(into));
        fs::read(into).expect("reading the object")
    }

    /// Asserts that the bucket under `prefix` holds exactly the completed files of the archive
    /// directory `dir` (each once, byte for byte, rejects under `_rejects/`), plus the day
    /// marks in `marks`, and nothing else: no `.part`, no stray object.
    pub fn assert_exact(&self, prefix: &str, dir: &Path, marks: &[&str]) {
        let mut expected: Vec<String> = super::data_files(dir)
            .into_iter()
            .filter(|rel| !rel.ends_with(".part"))
            .collect();
        let key_of = |rel: &str| match rel.contains('/') {
            true => format!("{prefix}/{rel}"),
            false if super::is_rejects(rel) => format!("{prefix}/_rejects/{rel}"),
            false => format!("{prefix}/{rel}"),
        };
        let mut keys: Vec<String> = expected.iter().map(|rel| key_of(rel)).collect();
        keys.extend(marks.iter().map(|m| format!("{prefix}/{m}")));
        keys.sort();
        let objects = self.objects(&format!("{prefix}/"));
        let listed: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            listed, keys,
            "the bucket holds exactly the completed files and marks"
        );
        let scratch = self.dir.path().join("object");
        expected.sort();
        for rel in expected {
            let local = fs::read(dir.join(&rel)).expect("reading a local file");
            let remote = self.get(&key_of(&rel), &scratch);
            assert!(
                local == remote,
                "{rel}: the object differs from the local file"
            );
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.down();
    }
}
