//! Where the API is and how a command authenticates.
//!
//! - **Base URL**: `--base-url`, else `OPENROUTER_BASE_URL`, else OpenRouter's. It must be
//!   `https://`; plain `http://` only on a loopback address (the key would travel in clear).
//! - **Key**: `--api-key-file PATH`, else `OPENROUTER_API_KEY`; never from a job file.
//!   `OPENROUTER_MANAGEMENT_KEY` (optional) is only for `GET /credits`.
//! - **`--mock`**: the built-in mock server, started in-process on 127.0.0.1; no key needed.

use std::path::Path;

use secrecy::SecretString;

use crate::mock::{MockConfig, MockServer};

/// The default OpenRouter API base.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// A base URL or key that cannot be used (a usage error: nothing is sent).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

/// The base URL: `flag`, else `env` (`OPENROUTER_BASE_URL`), else [`DEFAULT_BASE_URL`];
/// checked by [`check_base_url`], without a trailing `/`.
pub fn base_url(flag: Option<String>, env: Option<String>) -> Result<String, EndpointError> {
    let url = flag.or(env).unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    check_base_url(&url)?;
    Ok(url.trim_end_matches('/').to_string())
}

/// `OPENROUTER_BASE_URL`, when set.
pub fn env_base_url() -> Option<String> {
    std::env::var("OPENROUTER_BASE_URL").ok()
}

/// A plain `http://` base URL is refused unless it points at a loopback address.
pub fn check_base_url(url: &str) -> Result<(), EndpointError> {
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // The host is after any `user:password@` (`http://localhost:x@evil.example` is not local).
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = if let Some(h) = host_port.strip_prefix('[') {
            h.split(']').next().unwrap_or("")
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false);
        if !loopback {
            return Err(EndpointError(format!(
                "refusing plain http:// base URL {}: the key would travel unencrypted; use https:// (http:// is allowed only for loopback addresses)",
                crate::client::without_userinfo(url)
            )));
        }
        Ok(())
    } else if lower.starts_with("https://") {
        Ok(())
    } else {
        Err(EndpointError(format!(
            "base URL must start with https:// (or http:// for loopback): {}",
            crate::client::without_userinfo(url)
        )))
    }
}

/// The API key: the first line of `key_file`, else `OPENROUTER_API_KEY` (blank = none).
pub fn load_key(key_file: Option<&Path>) -> Result<Option<SecretString>, EndpointError> {
    if let Some(path) = key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EndpointError(format!("--api-key-file {}: {e}", path.display())))?;
        let key = text.trim();
        if key.is_empty() {
            return Err(EndpointError(format!(
                "--api-key-file {}: the file is empty",
                path.display()
            )));
        }
        return Ok(Some(SecretString::from(key.to_string())));
    }
    Ok(env_key("OPENROUTER_API_KEY"))
}

/// `OPENROUTER_MANAGEMENT_KEY`, when set (for `GET /credits`).
pub fn management_key() -> Option<SecretString> {
    env_key("OPENROUTER_MANAGEMENT_KEY")
}

fn env_key(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_string()))
}

/// The API endpoint a command talks to: the in-process mock (`--mock`), or the configured one.
pub struct Endpoint {
    /// The base URL (checked, no trailing `/`).
    pub base_url: String,
    /// The key.
    pub key: Option<SecretString>,
    /// Keeps the in-process mock alive.
    pub mock: Option<MockServer>,
}

impl Endpoint {
    /// Resolves the endpoint; `mock` starts the mock and needs no key.
    pub async fn resolve(
        mock: bool,
        base_url_flag: Option<String>,
        key_file: Option<&Path>,
    ) -> anyhow::Result<Endpoint> {
        if mock {
            // The in-process mock keeps no request log: a long rehearsal stays flat in memory.
            let server = MockServer::start(MockConfig {
                no_log: true,
                ..MockConfig::default()
            })
            .await?;
            crate::prices::disable_cache();
            return Ok(Endpoint {
                base_url: server.base_url(),
                key: Some(SecretString::from("sk-or-v1-mock-local".to_string())),
                mock: Some(server),
            });
        }
        Ok(Endpoint {
            base_url: base_url(base_url_flag, env_base_url())?,
            key: load_key(key_file)?,
            mock: None,
        })
    }

    /// Fails when a key is needed (the default OpenRouter URL) and none was given.
    pub fn require_key(&self) -> Result<(), EndpointError> {
        if self.key.is_none() && self.base_url.starts_with(DEFAULT_BASE_URL) {
            return Err(EndpointError(
                "OPENROUTER_API_KEY is not set: export it, or pass --api-key-file PATH (or try --mock); nothing was sent"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_neither_fakes_loopback_nor_is_echoed() {
        let err = check_base_url("http://localhost:s3cret@evil.example/api/v1")
            .unwrap_err()
            .0;
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("evil.example"), "{err}");
        let err = check_base_url("ftp://u:s3cret@h/x").unwrap_err().0;
        assert!(!err.contains("s3cret"), "{err}");
        assert!(check_base_url("http://u:p@127.0.0.1:9/api/v1").is_ok());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_base_url("http://127.0.0.1:8080/api/v1").is_ok());
        assert!(check_base_url("http://localhost/api/v1").is_ok());
        assert!(check_base_url("http://[::1]:9/api").is_ok());
        assert!(check_base_url("https://openrouter.ai/api/v1").is_ok());
        assert!(check_base_url("http://10.0.0.1/api/v1").is_err());
        assert!(check_base_url("http://example.com/api/v1").is_err());
        assert!(check_base_url("ftp://example.com/").is_err());
    }

    #[test]
    fn the_flag_beats_the_environment_beats_the_default() {
        let flag = Some("https://a.example/v1/".to_string());
        let env = Some("https://b.example/v1".to_string());
        assert_eq!(base_url(flag, env.clone()).unwrap(), "https://a.example/v1");
        assert_eq!(base_url(None, env).unwrap(), "https://b.example/v1");
        assert_eq!(base_url(None, None).unwrap(), DEFAULT_BASE_URL);
        assert!(base_url(None, Some("http://10.1.2.3/v1".into())).is_err());
    }

    #[test]
    fn a_key_file_is_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "  sk-or-v1-x \n").unwrap();
        let key = load_key(Some(&p)).unwrap().unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&key), "sk-or-v1-x");
        std::fs::write(&p, "\n").unwrap();
        let err = load_key(Some(&p)).unwrap_err().0;
        assert!(err.contains("empty") && err.contains("key"), "{err}");
        assert!(load_key(Some(&dir.path().join("none"))).is_err());
    }
}
