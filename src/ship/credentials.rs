//! Where the S3 credentials come from, read again before every request so that fixed
//! credentials take effect without a restart: `--s3-credentials FILE`; else the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); else systemd's
//! `LoadCredential=s3-credentials:…` (`$CREDENTIALS_DIRECTORY/s3-credentials`); else the shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) with `AWS_PROFILE`.
//!
//! Files are in the shared credentials file's format (`[profile]` sections of `key = value`;
//! lines before any section count as `default`). A secret never appears in an error.

use std::env;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::sigv4::Credentials;

/// The name of the systemd credential (`LoadCredential=s3-credentials:/etc/…`).
pub const SYSTEMD_CREDENTIAL: &str = "s3-credentials";
/// The largest credentials file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Where to look; `file` is `--s3-credentials`.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub file: Option<PathBuf>,
}

impl Source {
    /// The credentials to sign the next request with, or why there are none.
    pub fn load(&self) -> Result<Credentials, String> {
        let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        if let Some(file) = &self.file {
            return from_file(file, &profile);
        }
        if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        if let Some(dir) = var("CREDENTIALS_DIRECTORY") {
            let file = Path::new(&dir).join(SYSTEMD_CREDENTIAL);
            if file.exists() {
                return from_file(&file, &profile);
            }
        }
        let shared = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".aws/credentials")));
        match shared {
            Some(file) if file.exists() => from_file(&file, &profile),
            _ => Err(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 --s3-credentials FILE, or ~/.aws/credentials"
                    .into(),
            ),
        }
    }
}

fn from_file(path: &Path, profile: &str) -> Result<Credentials, String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("reading the S3 credentials {}: {e}", path.display()))?;
    parse(&text, profile).ok_or_else(|| {
        format!(
            "{}: no profile [{profile}] with aws_access_key_id and aws_secret_access_key",
            path.display()
        )
    })
}

/// The credentials of `profile` in a shared credentials file's text.
pub fn parse(text: &str, profile: &str) -> Option<Credentials> {
    let mut section = "default".to_string();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            section = name
                .strip_prefix("profile ")
                .unwrap_or(name)
                .trim()
                .to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if section != profile {
            continue;
        }
        let value = Some(value.trim().to_string());
        match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    Some(Credentials {
        access_key_id: id.filter(|v| !v.is_empty())?,
        secret_access_key: secret.filter(|v| !v.is_empty())?,
        session_token: token.filter(|v| !v.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_of_a_shared_credentials_file() {
        let text = "aws_access_key_id = TOP\naws_secret_access_key = s0\n\
                    [other]\naws_access_key_id=OTHER\naws_secret_access_key=s1\n\
                    aws_session_token = tok\n[profile third]\n# a comment\n\
                    aws_access_key_id = THIRD\n";
        let default = parse(text, "default").unwrap();
        assert_eq!(
            (default.access_key_id.as_str(), default.session_token),
            ("TOP", None)
        );
        let other = parse(text, "other").unwrap();
        assert_eq!(other.secret_access_key, "s1");
        assert_eq!(other.session_token.as_deref(), Some("tok"));
        assert!(parse(text, "third").is_none(), "no secret");
        assert!(parse(text, "missing").is_none());
    }

    #[test]
    fn an_error_never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(&file, "[default]\naws_secret_access_key = VERYSECRET\n").unwrap();
        let source = Source { file: Some(file) };
        let err = source.load().unwrap_err();
        assert!(!err.contains("VERYSECRET"), "{err}");
        assert!(err.contains("aws_access_key_id"), "{err}");
    }
}
